//! Draws the PNG of a DET curve written as CSV by `tessera-bio eval --det` (threshold,fmr,fnmr), beside it:
//! `cargo run -p tessera-biometrics --example det_png -- det.csv` writes `det.png`.
#![allow(clippy::print_stdout, reason = "developer tool")]

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let path = std::path::PathBuf::from(std::env::args().nth(1).context("usage: det_png DET.csv")?);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut det = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<f64> = line
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} line {}: not three numbers", path.display(), n + 1))?;
        if let [t, fmr, fnmr] = f[..] {
            det.push((t, fmr, fnmr));
        } else {
            anyhow::bail!("{} line {}: expected threshold,fmr,fnmr", path.display(), n + 1);
        }
    }
    let png = path.with_extension("png");
    tessera_biometrics::eval::det_plot(&det).save(&png)?;
    println!("{}", png.display());
    Ok(())
}
