//! UIN pool benchmark: generation (filters + Verhoeff), sealing, pool fill, and allocation from the database
//! (taking sealed entries, recording them as assigned to RIDs and opening them), in batches and one RID per
//! transaction, on SQLite and (when reachable) PostgreSQL, where several allocators also run at once. Prints
//! figures; run with `cargo bench --profile dev -p tessera-server --bench uin_pool`.
//! `TESSERA_BENCH_UINS` (default 200,000) sets the pool size, `TESSERA_BENCH_ALLOCATE` (default 100,000) how
//! many UINs are allocated in batches, `TESSERA_BENCH_BATCH` (default 1,000) the batch size, and
//! `TESSERA_BENCH_BACKENDS` (default `sqlite,postgres`) which stores run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::sync::Arc;
use std::time::Instant;

use tessera_packet::ids::Rid;
use tessera_server::store::Store;
use tessera_server::uin::{self, UinCipher, UinGenerator};

fn batch() -> usize {
    env_usize("TESSERA_BENCH_BATCH", 1_000).max(1)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Distinct RIDs: machine `m`, sequence and time vary.
fn rids(machine: u32, n: usize) -> Vec<Rid> {
    (0..n)
        .map(|i| {
            format!("10001{machine:05}{:05}20261129{:06}", i % 99_999 + 1, i / 99_999)
                .parse()
                .unwrap()
        })
        .collect()
}

fn rate(n: usize, secs: f64) -> String {
    format!("{n} in {secs:.2} s = {:.0}/s", n as f64 / secs)
}

async fn bench_store(name: &str, store: Arc<dyn Store>, cipher: &UinCipher, pool: usize, allocate: usize) {
    let mut g = UinGenerator::new().unwrap();
    let rows = uin::sealed_batch(&mut g, cipher, pool).unwrap();
    let t = Instant::now();
    let added = usize::try_from(store.add_uins(rows).await.unwrap()).unwrap();
    println!(
        "{name}: pool fill (sealed entries): {}",
        rate(added, t.elapsed().as_secs_f64())
    );

    let all = rids(10_001, allocate.min(added / 4));
    let t = Instant::now();
    let mut n = 0usize;
    for chunk in all.chunks(batch()) {
        n += uin::allocate(store.as_ref(), cipher, chunk.to_vec(), 1)
            .await
            .unwrap()
            .len();
    }
    println!(
        "{name}: allocation in batches of {} RIDs (take, assign, open): {}",
        batch(),
        rate(n, t.elapsed().as_secs_f64())
    );
    let raw = rids(10_003, all.len());
    let t = Instant::now();
    let mut n = 0usize;
    for chunk in raw.chunks(batch()) {
        n += store.allocate_uins(chunk.to_vec(), 1).await.unwrap().len();
    }
    println!(
        "{name}: of which the database transaction (take, assign; sealed entries returned): {}",
        rate(n, t.elapsed().as_secs_f64())
    );

    let t = Instant::now();
    let again = uin::allocate(
        store.as_ref(),
        cipher,
        all.iter().take(batch()).cloned().collect(),
        2,
    )
    .await
    .unwrap();
    println!(
        "{name}: idempotent re-allocation of a batch of {} RIDs: {}",
        batch(),
        rate(again.len(), t.elapsed().as_secs_f64())
    );

    let singles = rids(10_002, 2_000);
    let t = Instant::now();
    for r in &singles {
        uin::allocate(store.as_ref(), cipher, vec![r.clone()], 3)
            .await
            .unwrap();
    }
    println!(
        "{name}: allocation one RID per transaction (the pipeline's call): {}",
        rate(singles.len(), t.elapsed().as_secs_f64())
    );
    let t = Instant::now();
    for r in &singles {
        uin::allocate(store.as_ref(), cipher, vec![r.clone()], 4)
            .await
            .unwrap();
    }
    println!(
        "{name}: idempotent re-allocation one RID per transaction: {}",
        rate(singles.len(), t.elapsed().as_secs_f64())
    );
}

/// `allocators` tasks allocating concurrently in batches (as several worker processes would).
async fn bench_concurrent(
    name: &str,
    store: Arc<dyn Store>,
    cipher: Arc<UinCipher>,
    allocators: u32,
    each: usize,
) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..allocators)
        .map(|a| {
            let (store, cipher) = (store.clone(), cipher.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                for chunk in rids(20_000 + a, each).chunks(batch()) {
                    got.extend(
                        uin::allocate(store.as_ref(), &cipher, chunk.to_vec(), 5)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|(_, u)| u),
                    );
                }
                got
            })
        })
        .collect();
    let mut all = std::collections::HashSet::new();
    let mut n = 0;
    for t in tasks {
        for u in t.await.unwrap() {
            n += 1;
            assert!(all.insert(u), "a UIN was handed out twice");
        }
    }
    println!(
        "{name}: {allocators} concurrent allocators, batches of {}: {} (all distinct)",
        batch(),
        rate(n, t.elapsed().as_secs_f64())
    );
}

fn main() {
    let pool = env_usize("TESSERA_BENCH_UINS", 200_000);
    let allocate = env_usize("TESSERA_BENCH_ALLOCATE", 100_000);
    let mut g = UinGenerator::new().unwrap();
    let t = Instant::now();
    let v = g.generate(pool).unwrap();
    println!(
        "generation (filters, Verhoeff): {}",
        rate(v.len(), t.elapsed().as_secs_f64())
    );
    let cipher = Arc::new(UinCipher::new(&[5; 32])); // TEST-ONLY salt
    let t = Instant::now();
    for u in &v {
        cipher.seal(u.as_str()).unwrap();
    }
    println!(
        "sealing (hash + XChaCha20-Poly1305): {}",
        rate(v.len(), t.elapsed().as_secs_f64())
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let backends = std::env::var("TESSERA_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        if backends.contains("sqlite") {
            let s =
                tessera_server::store::sqlite::SqliteStore::open(&dir.path().join("b.db"), &[3; 32]).unwrap();
            bench_store("sqlite (SQLCipher)", Arc::new(s), &cipher, pool, allocate).await;
        }
        if !backends.contains("postgres") {
            return;
        }
        let url = std::env::var("TESSERA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_{}", std::process::id());
        match tessera_server::store::postgres::PgStore::connect(&url, 8, Some(&schema)).await {
            Ok(pg) => {
                let pg: Arc<dyn Store> = Arc::new(pg);
                bench_store("postgres", pg.clone(), &cipher, pool, allocate).await;
                let left = usize::try_from(pg.uins_available().await.unwrap()).unwrap();
                bench_concurrent("postgres", pg, cipher.clone(), 4, (left / 4).min(allocate / 4)).await;
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await
                    .unwrap();
                drop(c);
                let _ = task.await;
            }
            Err(e) => println!("postgres: skipped ({e})"),
        }
    });
}
