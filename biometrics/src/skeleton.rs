//! Thinning of binary ridge images, crossing-number minutiae detection with directions, and removal of
//! false minutiae. Used by the extractor and by the synthetic generator (for ground truth).
#![allow(
    clippy::cast_possible_truncation,
    reason = "ring indices and pixel coordinates are small and in range"
)]

use std::sync::OnceLock;

use crate::grid::Grid;
use crate::minutiae::{Minutia, MinutiaKind, angle_diff, norm_angle};

/// Neighbour offsets in ring order: N, NE, E, SE, S, SW, W, NW.
const RING: [(isize, isize); 8] = [
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
];

fn ring_bits(g: &Grid<u8>, x: isize, y: isize) -> u8 {
    let mut bits = 0u8;
    for (i, (dx, dy)) in RING.iter().enumerate() {
        if g.at(x + dx, y + dy) != 0 {
            bits |= 1 << i;
        }
    }
    bits
}

fn bit(bits: u8, i: usize) -> bool {
    bits >> (i % 8) & 1 == 1
}

/// Number of 0→1 transitions around the ring (Zhang-Suen "A").
fn transitions(bits: u8) -> u32 {
    (0..8).filter(|&i| !bit(bits, i) && bit(bits, i + 1)).count() as u32
}

/// Number of 8-connected groups among the set neighbours (edge neighbours touch their ring neighbours and
/// each other through the corner position).
fn groups8(bits: u8) -> u32 {
    static LUT: OnceLock<[u8; 256]> = OnceLock::new();
    let lut = LUT.get_or_init(|| {
        let mut t = [0u8; 256];
        for (b, slot) in t.iter_mut().enumerate() {
            let b = b as u8;
            let mut parent: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
            fn find(p: &mut [usize; 8], i: usize) -> usize {
                let mut i = i;
                while let Some(&n) = p.get(i) {
                    if n == i {
                        break;
                    }
                    i = n;
                }
                i
            }
            let mut union = |a: usize, c: usize| {
                let ra = find(&mut parent, a);
                let rc = find(&mut parent, c);
                if let Some(slot) = parent.get_mut(ra) {
                    *slot = rc;
                }
            };
            for i in 0..8 {
                if bit(b, i) && bit(b, i + 1) {
                    union(i, (i + 1) % 8);
                }
                // edge neighbours (even indices) touch the next edge neighbour diagonally
                if i % 2 == 0 && bit(b, i) && bit(b, i + 2) {
                    union(i, (i + 2) % 8);
                }
            }
            let mut roots = 0u8;
            for i in 0..8 {
                if bit(b, i) && find(&mut parent, i) == i {
                    roots += 1;
                }
            }
            *slot = roots;
        }
        t
    });
    u32::from(lut.get(usize::from(bits)).copied().unwrap_or(0))
}

/// Zhang-Suen thinning followed by removal of staircase pixels, giving a one-pixel, 8-connected skeleton.
/// Input: non-zero = ridge.
pub fn thin(binary: &Grid<u8>) -> Grid<u8> {
    let mut g = Grid::from_fn(binary.w, binary.h, |x, y| u8::from(binary.get(x, y) != 0));
    // candidate list: ridge pixels only
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    for y in 0..g.h {
        for x in 0..g.w {
            if g.get(x, y) != 0 {
                candidates.push((x, y));
            }
        }
    }
    let mut to_delete = Vec::new();
    loop {
        let mut changed = false;
        for pass in 0..2 {
            to_delete.clear();
            for &(x, y) in &candidates {
                if g.get(x, y) == 0 {
                    continue;
                }
                let b = ring_bits(&g, x as isize, y as isize);
                let n = b.count_ones();
                if !(2..=6).contains(&n) || transitions(b) != 1 {
                    continue;
                }
                let (p2, p4, p6, p8) = (bit(b, 0), bit(b, 2), bit(b, 4), bit(b, 6));
                let ok = if pass == 0 {
                    !(p4 && p6 && (p2 || p8))
                } else {
                    !(p2 && p8 && (p4 || p6))
                };
                if ok {
                    to_delete.push((x, y));
                }
            }
            for &(x, y) in &to_delete {
                g.set(x, y, 0);
            }
            changed |= !to_delete.is_empty();
        }
        candidates.retain(|&(x, y)| g.get(x, y) != 0);
        if !changed {
            break;
        }
    }
    // Staircase cleanup: a pixel whose neighbours form one 8-connected group and that has two or more
    // neighbours, at least two of them edge-adjacent, is redundant.
    for &(x, y) in &candidates {
        let b = ring_bits(&g, x as isize, y as isize);
        let n = b.count_ones();
        if n < 2 || groups8(b) != 1 {
            continue;
        }
        let corner = (0..4).any(|k| bit(b, 2 * k) && bit(b, 2 * k + 2));
        if corner && n <= 3 {
            g.set(x, y, 0);
        }
    }
    g
}

/// Follows a skeleton branch from `start` (a neighbour of `origin`) for up to `steps` pixels. Returns the
/// end point and the number of steps taken; stops early at another junction.
fn trace(
    skel: &Grid<u8>,
    origin: (isize, isize),
    start: (isize, isize),
    steps: usize,
) -> ((isize, isize), usize, bool) {
    let mut prev = origin;
    let mut cur = start;
    let mut visited = vec![origin, start];
    for taken in 1..steps {
        let b = ring_bits(skel, cur.0, cur.1);
        if transitions(b) >= 3 {
            return (cur, taken, true);
        }
        let mut next = None;
        // prefer edge neighbours, then corners
        for &i in &[0usize, 2, 4, 6, 1, 3, 5, 7] {
            if !bit(b, i) {
                continue;
            }
            let (dx, dy) = RING.get(i).copied().unwrap_or((0, 0));
            let cand = (cur.0 + dx, cur.1 + dy);
            if cand == prev || visited.contains(&cand) {
                continue;
            }
            next = Some(cand);
            break;
        }
        match next {
            Some(n) => {
                prev = cur;
                cur = n;
                visited.push(n);
                if visited.len() > 4 {
                    visited.remove(0);
                }
            }
            None => return (cur, taken, false),
        }
    }
    (cur, steps, false)
}

/// A raw minutia with the information false-minutia removal needs.
#[derive(Debug, Clone, Copy)]
struct Raw {
    m: Minutia,
    /// For endings: the branch reached a junction within the trace length (a spur).
    spur: bool,
}

/// Finds endings (crossing number 1) and bifurcations (3 branches) on a skeleton, at points where `valid`
/// is true, with directions traced over `trace_len` pixels.
fn detect(skel: &Grid<u8>, valid: &dyn Fn(usize, usize) -> bool, trace_len: usize) -> Vec<Raw> {
    let mut out = Vec::new();
    for y in 1..skel.h.saturating_sub(1) {
        for x in 1..skel.w.saturating_sub(1) {
            if skel.get(x, y) == 0 || !valid(x, y) {
                continue;
            }
            let (xi, yi) = (x as isize, y as isize);
            let b = ring_bits(skel, xi, yi);
            // crossing number: runs of set pixels around the ring
            let groups = transitions(b);
            if groups == 1 && b.count_ones() <= 2 {
                // ending
                let first = (0..8).find(|&i| bit(b, i)).unwrap_or(0);
                let (dx, dy) = RING.get(first).copied().unwrap_or((0, 0));
                let (end, taken, junction) = trace(skel, (xi, yi), (xi + dx, yi + dy), trace_len);
                if taken < 3 {
                    continue;
                }
                let dir = ((yi - end.1) as f32).atan2((xi - end.0) as f32);
                out.push(Raw {
                    m: Minutia {
                        x: x as f32,
                        y: y as f32,
                        direction: norm_angle(dir),
                        kind: MinutiaKind::Ending,
                        quality: 50,
                    },
                    spur: junction,
                });
            } else if groups == 3 {
                // bifurcation: trace the three branches
                let mut starts = Vec::with_capacity(3);
                let mut i = 0;
                while i < 8 && starts.len() < 3 {
                    if bit(b, i) && !bit(b, i + 7) {
                        // first pixel of a group (scanning ring order); prefer an edge pixel in the group
                        let mut j = i;
                        let mut pick = i;
                        while bit(b, j) && j < i + 8 {
                            if j % 2 == 0 {
                                pick = j;
                                break;
                            }
                            j += 1;
                        }
                        starts.push(pick % 8);
                    }
                    i += 1;
                }
                if starts.len() != 3 {
                    continue;
                }
                let mut angles = [0f32; 3];
                let mut short = false;
                for (slot, &s) in angles.iter_mut().zip(&starts) {
                    let (dx, dy) = RING.get(s).copied().unwrap_or((0, 0));
                    let (end, taken, _) = trace(skel, (xi, yi), (xi + dx, yi + dy), trace_len);
                    short |= taken < 3;
                    *slot = ((end.1 - yi) as f32).atan2((end.0 - xi) as f32);
                }
                if short {
                    continue;
                }
                let [a0, a1, a2] = angles;
                // the stem is the branch farthest from the other two
                let spread = |a: f32, b: f32, c: f32| angle_diff(a, b).min(angle_diff(a, c));
                let s = [spread(a0, a1, a2), spread(a1, a0, a2), spread(a2, a0, a1)];
                let stem = if s[0] >= s[1] && s[0] >= s[2] {
                    a0
                } else if s[1] >= s[2] {
                    a1
                } else {
                    a2
                };
                out.push(Raw {
                    m: Minutia {
                        x: x as f32,
                        y: y as f32,
                        direction: norm_angle(stem),
                        kind: MinutiaKind::Bifurcation,
                        quality: 50,
                    },
                    spur: false,
                });
            }
        }
    }
    out
}

/// Parameters of minutiae detection and false-minutiae removal (pixels at 500 ppi).
#[derive(Debug, Clone, Copy)]
pub struct CleanParams {
    /// Pixels traced to measure a branch direction.
    pub trace_len: usize,
    /// Two minutiae closer than this are both removed (bridges, islands, holes, tiny breaks).
    pub min_distance: f32,
    /// Opposite endings closer than this, facing each other, are a broken ridge: both removed.
    pub gap_distance: f32,
}

impl Default for CleanParams {
    fn default() -> Self {
        Self {
            trace_len: 10,
            min_distance: 7.0,
            gap_distance: 16.0,
        }
    }
}

/// Detects minutiae on a skeleton and removes the usual false ones (spurs, short breaks, bridges, clusters).
pub fn minutiae(skel: &Grid<u8>, valid: &dyn Fn(usize, usize) -> bool, p: &CleanParams) -> Vec<Minutia> {
    let raw = detect(skel, valid, p.trace_len);
    let n = raw.len();
    let mut keep = vec![true; n];
    for (i, r) in raw.iter().enumerate() {
        if r.spur
            && let Some(k) = keep.get_mut(i)
        {
            *k = false;
        }
    }
    for i in 0..n {
        for j in (i + 1)..n {
            let (Some(a), Some(b)) = (raw.get(i), raw.get(j)) else {
                continue;
            };
            let dx = a.m.x - b.m.x;
            let dy = a.m.y - b.m.y;
            let d = (dx * dx + dy * dy).sqrt();
            if d > p.gap_distance {
                continue;
            }
            let remove = if d < p.min_distance {
                true
            } else if a.m.kind == MinutiaKind::Ending && b.m.kind == MinutiaKind::Ending {
                // facing endings: directions roughly opposite and each points towards the other
                let ab = (b.m.y - a.m.y).atan2(b.m.x - a.m.x);
                angle_diff(a.m.direction, b.m.direction) > 2.4
                    && angle_diff(a.m.direction, ab) < 0.8
                    && angle_diff(b.m.direction, ab + std::f32::consts::PI) < 0.8
            } else {
                false
            };
            if remove {
                if let Some(k) = keep.get_mut(i) {
                    *k = false;
                }
                if let Some(k) = keep.get_mut(j) {
                    *k = false;
                }
            }
        }
    }
    raw.iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(r, _)| r.m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw_line(g: &mut Grid<u8>, x0: usize, x1: usize, y: usize, thick: usize) {
        for x in x0..=x1 {
            for t in 0..thick {
                g.set(x, y + t, 1);
            }
        }
    }

    #[test]
    fn thinning_makes_thick_lines_one_pixel_wide() {
        let mut g = Grid::new(60, 20, 0u8);
        draw_line(&mut g, 5, 50, 8, 5);
        let s = thin(&g);
        for x in 10..45 {
            let col: u32 = (0..20).map(|y| u32::from(s.get(x, y))).sum();
            assert_eq!(col, 1, "column {x}");
        }
    }

    #[test]
    fn ending_and_bifurcation_with_directions() {
        // A horizontal ridge from x=10 to x=50 at y=20, and a branch leaving it at x=30 going up-right.
        let mut g = Grid::new(70, 40, 0u8);
        draw_line(&mut g, 10, 50, 20, 1);
        for k in 0..15 {
            g.set(30 + k, 19 - k, 1);
        }
        let all = minutiae(
            &g,
            &|_, _| true,
            &CleanParams {
                min_distance: 3.0,
                ..Default::default()
            },
        );
        let endings: Vec<_> = all.iter().filter(|m| m.kind == MinutiaKind::Ending).collect();
        let bifs: Vec<_> = all
            .iter()
            .filter(|m| m.kind == MinutiaKind::Bifurcation)
            .collect();
        assert_eq!(endings.len(), 3, "{all:?}");
        assert_eq!(bifs.len(), 1, "{all:?}");
        // left ending points left (π), right ending points right (0)
        let left = endings.iter().find(|m| m.x < 15.0).unwrap();
        assert!(angle_diff(left.direction, std::f32::consts::PI) < 0.3, "{left:?}");
        let right = endings.iter().find(|m| m.x > 45.0).unwrap();
        assert!(angle_diff(right.direction, 0.0) < 0.3, "{right:?}");
        // the bifurcation's stem: the two branches to the right (0 and -45°) are the fork, the stem points left
        let b = bifs[0];
        assert!((b.x - 30.0).abs() <= 2.0 && (b.y - 20.0).abs() <= 2.0);
        assert!(angle_diff(b.direction, std::f32::consts::PI) < 0.4, "{b:?}");
    }

    #[test]
    fn broken_ridge_endings_are_removed() {
        let mut g = Grid::new(80, 30, 0u8);
        draw_line(&mut g, 5, 35, 15, 1);
        draw_line(&mut g, 44, 75, 15, 1);
        let all = minutiae(&g, &|x, _| x > 20 && x < 60, &CleanParams::default());
        assert!(all.is_empty(), "{all:?}");
    }
}
