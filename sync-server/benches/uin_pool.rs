//! UIN pool benchmark: generation (filters + Verhoeff) and allocation from the database in batches, on SQLite
//! and (when reachable) PostgreSQL. Prints figures; run with
//! `cargo bench -p tessera-server --bench uin_pool`.
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
use tessera_server::uin::UinGenerator;

const N: usize = 200_000;
const BATCH: usize = 1_000;

fn rids(n: usize) -> Vec<Rid> {
    (0..n)
        .map(|i| {
            format!(
                "10001{:05}{:05}20261129{:06}",
                10_001 + i / 99_999 % 80_000,
                i % 99_999 + 1,
                i / 99_999
            )
            .parse()
            .unwrap()
        })
        .collect()
}

async fn bench_store(name: &str, store: Arc<dyn Store>) {
    let mut g = UinGenerator::new().unwrap();
    let mut rows = Vec::with_capacity(N);
    for (i, u) in g.generate(N).unwrap().into_iter().enumerate() {
        rows.push((
            u.as_str().to_owned(),
            i64::try_from(i).unwrap() * 7919 % 1_000_003,
        ));
    }
    let t = Instant::now();
    let added = store.add_uins(rows).await.unwrap();
    let fill = t.elapsed();
    println!(
        "{name}: pool fill {added} UINs in {:.2} s ({:.0}/s)",
        fill.as_secs_f64(),
        added as f64 / fill.as_secs_f64()
    );
    let all = rids(usize::try_from(added).unwrap().min(50_000));
    let t = Instant::now();
    let mut n = 0usize;
    for chunk in all.chunks(BATCH) {
        n += store.allocate_uins(chunk.to_vec(), 1).await.unwrap().len();
    }
    let el = t.elapsed();
    println!(
        "{name}: allocated {n} UINs in batches of {BATCH} in {:.2} s = {:.0} UINs/s",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );
    let t = Instant::now();
    let single = 2_000.min(n);
    for r in all.iter().take(single) {
        store.allocate_uins(vec![r.clone()], 2).await.unwrap();
    }
    let el = t.elapsed();
    println!(
        "{name}: {single} single idempotent re-allocations (one transaction each): {:.0}/s",
        single as f64 / el.as_secs_f64()
    );
}

fn main() {
    let mut g = UinGenerator::new().unwrap();
    let t = Instant::now();
    let v = g.generate(N).unwrap();
    let el = t.elapsed();
    println!(
        "generation: {} filtered UINs in {:.3} s = {:.0} UINs/s",
        v.len(),
        el.as_secs_f64(),
        v.len() as f64 / el.as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let s = tessera_server::store::sqlite::SqliteStore::open(&dir.path().join("b.db"), &[3; 32]).unwrap();
        bench_store("sqlite (SQLCipher)", Arc::new(s)).await;
        let url = std::env::var("TESSERA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_{}", std::process::id());
        match tessera_server::store::postgres::PgStore::connect(&url, 4, Some(&schema)).await {
            Ok(pg) => {
                bench_store("postgres", Arc::new(pg)).await;
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
