//! The indexed biometric gallery (`dedupe::IndexedGallery`) kept in step with the store's `gallery` table:
//! duplicates found through the index, removal, restart (file reopened, only new rows loaded), and
//! rebuilds of a corrupt or stale file. Both backends.

use std::path::Path;
use std::sync::Arc;

use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::synth::Profile;
use tessera_biometrics::synth::fast::impression_minutiae;
use tessera_biometrics::template::Template;
use tessera_server::dedupe::{BioIndex, GalleryLoader, IndexedGallery, Rebuild};
use tessera_server::store::{NewIdentity, Store};

use crate::store::claimed_packet;

const FINGERS: [FingerPosition; 4] = [
    FingerPosition::RightThumb,
    FingerPosition::RightIndex,
    FingerPosition::LeftThumb,
    FingerPosition::LeftIndex,
];

/// The gallery's key of a person: the salted hash of its UIN.
fn key(person: u64) -> String {
    crate::common::uin_hash(&uin(person))
}

fn uin(person: u64) -> String {
    format!("{}", 2_345_000_000 + person)
}

/// Fast synthetic templates of one person (four fingers), impression `imp`.
fn templates(person: u64, imp: u64) -> Vec<Template> {
    FINGERS
        .iter()
        .map(|&position| Template {
            position,
            quality: 80,
            width: 400,
            height: 500,
            minutiae: impression_minutiae(
                700_000 + person * 16 + u64::from(position.code()),
                imp * 1_000_003 + person,
                Profile::Standard,
            ),
        })
        .collect()
}

async fn enrol(s: &dyn Store, person: u64) {
    let r = claimed_packet(s, &format!("g{person}"), u32::try_from(person).unwrap() + 1, 100).await;
    s.store_identity(NewIdentity {
        rid: r,
        uin: uin(person),
        uin_hash: key(person),
        key_id: "k1".into(),
        wrapped_key: vec![1; 72],
        ciphertext: vec![2; 50],
        blocking_key: format!("b{person}"),
        templates: templates(person, 0)
            .iter()
            .map(|t| (t.position.code(), t.to_bytes()))
            .collect(),
        at: 110,
    })
    .await
    .unwrap();
}

async fn open(dir: &Path, s: &dyn Store) -> (Arc<dyn BioIndex>, Rebuild) {
    let (g, why) = IndexedGallery::open(dir, s, 7.0, 1_000).await.unwrap();
    (Arc::new(g), why)
}

fn best(g: &Arc<dyn BioIndex>, person: u64) -> Option<String> {
    g.search(&templates(person, 1))
        .first()
        .map(|m| m.uin_hash.clone())
}

async fn run(s: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let gdir = dir.path().join("gallery");
    for p in 0..12 {
        enrol(s, p).await;
    }

    // First start: no file, built from the store.
    let (g, why) = open(&gdir, s).await;
    assert_eq!(why, Rebuild::Missing);
    let loader = GalleryLoader::default();
    assert_eq!(loader.refresh(&g, s).await.unwrap(), 12 * FINGERS.len());
    assert_eq!(g.len(), 12);

    // A second impression of an enrolled person is found through the index, with the best score first;
    // a person never enrolled is not.
    let hits = g.search(&templates(5, 1));
    assert_eq!(
        hits.first().map(|m| m.uin_hash.as_str()),
        Some(key(5).as_str()),
        "{hits:?}"
    );
    assert_eq!(hits[0].fingers, 4);
    assert!(hits[0].score >= 7.0);
    assert!(g.search(&templates(99, 1)).is_empty(), "non-mated probe");

    // Removal.
    assert!(g.remove(&key(5)));
    assert!(!g.remove(&key(5)));
    assert_eq!(best(&g, 5), None);
    assert_eq!(g.len(), 11);
    assert!(loader.persist(&g).await.unwrap(), "saved");
    drop(g);

    // Restart: the file is reopened (not rebuilt), the removal persisted, and only rows added since are
    // loaded from the store.
    enrol(s, 20).await;
    let (g, why) = open(&gdir, s).await;
    assert_eq!(why, Rebuild::No);
    assert_eq!(g.len(), 11);
    assert_eq!(best(&g, 3), Some(key(3)), "found without loading anything");
    assert_eq!(best(&g, 5), None, "removal persisted");
    let loader = GalleryLoader::default();
    assert_eq!(
        loader.refresh(&g, s).await.unwrap(),
        FINGERS.len(),
        "only the new person"
    );
    assert_eq!(best(&g, 20), Some(key(20)));
    assert_eq!(loader.refresh(&g, s).await.unwrap(), 0, "nothing new");
    assert!(loader.persist(&g).await.unwrap());
    drop(g);

    // A corrupt file is rebuilt from the store.
    let file = gdir.join("dedupe.tgal");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    let (g, why) = open(&gdir, s).await;
    assert!(matches!(why, Rebuild::Corrupt(_)), "{why:?}");
    assert_eq!(g.len(), 0);
    GalleryLoader::default().refresh(&g, s).await.unwrap();
    assert_eq!(g.len(), 13, "the removed person is in the store again");
    assert_eq!(best(&g, 5), Some(key(5)));
    drop(g);

    // A truncated file too.
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (_, why) = open(&gdir, s).await;
    assert!(matches!(why, Rebuild::Corrupt(_)), "{why:?}");
}

async fn stale_against_another_database(s: &dyn Store, other: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let gdir = dir.path().join("gallery");
    enrol(s, 1).await;
    enrol(s, 2).await;
    let (g, _) = open(&gdir, s).await;
    let loader = GalleryLoader::default();
    loader.refresh(&g, s).await.unwrap();
    loader.persist(&g).await.unwrap();
    drop(g);
    // The same data directory pointed at another database holding someone else.
    enrol(other, 7).await;
    let (g, why) = open(&gdir, other).await;
    assert!(matches!(why, Rebuild::Stale(_)), "{why:?}");
    let loader = GalleryLoader::default();
    loader.refresh(&g, other).await.unwrap();
    assert!(loader.persist(&g).await.unwrap());
    assert_eq!(g.len(), 1);
    assert_eq!(best(&g, 7), Some(key(7)));
    assert_eq!(best(&g, 1), None);
    // A lost state file also rebuilds.
    std::fs::remove_file(gdir.join("dedupe.tgal.json")).unwrap();
    let (_, why) = open(&gdir, other).await;
    assert_eq!(why, Rebuild::Missing);
}

#[tokio::test]
async fn indexed_gallery_sqlite() {
    let (store, _dir) = crate::common::sqlite_store();
    run(store.as_ref()).await;
}

#[tokio::test]
async fn indexed_gallery_postgres() {
    let Some((store, schema)) = crate::common::pg_store().await else {
        return;
    };
    run(store.as_ref()).await;
    crate::common::drop_schema(&schema).await;
}

#[tokio::test]
async fn indexed_gallery_rebuilds_when_stale() {
    let (a, _da) = crate::common::sqlite_store();
    let (b, _db) = crate::common::sqlite_store();
    stale_against_another_database(a.as_ref(), b.as_ref()).await;
}
