//! Seal and open+verify throughput on a typical ~3 MB packet, and the peak extra heap each needs.
//!
//! `cargo bench -p tessera-packet --bench packet` prints the memory figures first, then criterion's
//! throughput. Targets (issue "Foundation"): >= 150 MB/s each on one core; peak memory under 3x the
//! largest single file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group};
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_packet::{SealedPacket, keys, seal};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak heap above the level at the start of `f`.
fn peak_extra(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

fn memory_report() {
    let machine = keys::generate_signing_key().unwrap();
    let server = keys::generate_packet_identity();
    let content = sample_content(1, SampleSize::Typical);
    let largest = content
        .biometrics
        .iter()
        .map(|b| b.image.len())
        .chain(content.evidence.iter().map(|d| d.content.len()))
        .max()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.tpkt");
    let seal_peak = peak_extra(|| {
        tessera_packet::seal_to_file(&content, &[server.to_public()], &machine, &path).unwrap();
    });
    let verify_peak = peak_extra(|| {
        let mut p = tessera_packet::read_file(&path).unwrap();
        p.verify(&machine.verifying_key()).unwrap();
    });
    let open_peak = peak_extra(|| {
        let mut p = tessera_packet::read_file(&path).unwrap();
        p.verify(&machine.verifying_key()).unwrap();
        p.open_to_dir(&server, &dir.path().join("out")).unwrap();
    });
    let kb = |n: usize| n as f64 / 1024.0;
    println!(
        "packet size {:.0} KiB, largest single file {:.0} KiB",
        kb(std::fs::metadata(&path).unwrap().len() as usize),
        kb(largest)
    );
    for (what, peak) in [
        ("seal_to_file", seal_peak),
        ("read+verify", verify_peak),
        ("read+verify+open_to_dir", open_peak),
    ] {
        println!(
            "peak extra heap {what:<24} {:>7.0} KiB = {:.2}x the largest file",
            kb(peak),
            peak as f64 / largest as f64
        );
    }
}

fn bench(c: &mut Criterion) {
    let machine = keys::generate_signing_key().unwrap();
    let server = keys::generate_packet_identity();
    let content = sample_content(1, SampleSize::Typical);
    let mut sealed = Cursor::new(Vec::with_capacity(4 << 20));
    seal(&content, &[server.to_public()], &machine, &mut sealed).unwrap();
    let sealed = sealed.into_inner();
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Bytes(sealed.len() as u64));
    g.sample_size(30);
    let mut buf = Vec::with_capacity(4 << 20);
    g.bench_function("seal", |b| {
        b.iter(|| {
            buf.clear();
            seal(&content, &[server.to_public()], &machine, Cursor::new(&mut buf)).unwrap();
        })
    });
    g.bench_function("open+verify", |b| {
        b.iter(|| {
            let mut p = SealedPacket::read(Cursor::new(&sealed)).unwrap();
            p.verify(&machine.verifying_key()).unwrap();
            p.open(&server).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
