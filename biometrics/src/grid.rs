//! A small 2D array used by the image-processing code: out-of-range reads return a default value and
//! out-of-range writes are ignored, so no code path can index out of bounds.
#![allow(
    clippy::cast_possible_truncation,
    reason = "coordinates are checked non-negative and in range before conversion"
)]

/// Row-major 2D array.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid<T> {
    /// Width (columns).
    pub w: usize,
    /// Height (rows).
    pub h: usize,
    /// `w * h` values, row by row.
    pub data: Vec<T>,
}

impl<T: Copy + Default> Grid<T> {
    /// A grid filled with `value`.
    pub fn new(w: usize, h: usize, value: T) -> Self {
        Self {
            w,
            h,
            data: vec![value; w * h],
        }
    }

    /// Builds a grid from a function of (x, y).
    pub fn from_fn(w: usize, h: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                data.push(f(x, y));
            }
        }
        Self { w, h, data }
    }

    /// Value at (x, y), or `T::default()` outside.
    #[inline]
    pub fn at(&self, x: isize, y: isize) -> T {
        if x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h {
            return T::default();
        }
        self.data
            .get(y as usize * self.w + x as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Value at unsigned (x, y), or `T::default()` outside.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> T {
        if x >= self.w {
            return T::default();
        }
        self.data.get(y * self.w + x).copied().unwrap_or_default()
    }

    /// Sets (x, y) when inside.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: T) {
        if x < self.w
            && let Some(slot) = self.data.get_mut(y * self.w + x)
        {
            *slot = v;
        }
    }

    /// Mutable reference to (x, y) when inside.
    #[inline]
    pub fn get_mut(&mut self, x: usize, y: usize) -> Option<&mut T> {
        if x >= self.w {
            return None;
        }
        self.data.get_mut(y * self.w + x)
    }

    /// Row `y` as a slice (empty outside).
    pub fn row(&self, y: usize) -> &[T] {
        self.data.get(y * self.w..(y + 1) * self.w).unwrap_or(&[])
    }
}

impl Grid<f32> {
    /// Bilinear sample at real coordinates; `outside` beyond the edges.
    #[inline]
    pub fn bilinear(&self, x: f32, y: f32, outside: f32) -> f32 {
        if !(x >= 0.0 && y >= 0.0) || x > (self.w as f32 - 1.0) || y > (self.h as f32 - 1.0) {
            return outside;
        }
        let x0 = x.floor() as usize;
        let y0 = y.floor() as usize;
        let fx = x - x0 as f32;
        let fy = y - y0 as f32;
        let x1 = (x0 + 1).min(self.w.saturating_sub(1));
        let y1 = (y0 + 1).min(self.h.saturating_sub(1));
        let a = self.get(x0, y0);
        let b = self.get(x1, y0);
        let c = self.get(x0, y1);
        let d = self.get(x1, y1);
        (a * (1.0 - fx) + b * fx) * (1.0 - fy) + (c * (1.0 - fx) + d * fx) * fy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_is_safe() {
        let mut g = Grid::new(3, 2, 1u8);
        assert_eq!(g.at(-1, 0), 0);
        assert_eq!(g.at(3, 0), 0);
        assert_eq!(g.get(0, 2), 0);
        g.set(5, 5, 9);
        g.set(2, 1, 9);
        assert_eq!(g.get(2, 1), 9);
        let f = Grid::from_fn(2, 2, |x, y| (x + 2 * y) as f32);
        assert!((f.bilinear(0.5, 0.5, -1.0) - 1.5).abs() < 1e-6);
        assert_eq!(f.bilinear(-0.1, 0.0, -1.0), -1.0);
    }
}
