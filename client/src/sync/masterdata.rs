//! Master-data sync: pages by cursor per kind, applied with their cursor in one transaction; the assembled
//! configuration, operators and packet keys take effect only when they validate.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use tessera_packet::wire::{SyncKind, SyncPage};

use super::http::ServerClient;
use super::{Progress, SyncOptions, SyncReport, doc_version, document_name, percent, server_err};
use crate::audit;
use crate::error::{Result, StationError};
use crate::masterdata::Document;
use crate::operators::{Operator, OperatorBundle};
use crate::station::Station;

impl Station {
    pub(super) async fn sync_master_data(
        &mut self,
        client: &ServerClient,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut changed: Vec<SyncKind> = Vec::new();
        for kind in SyncKind::ALL {
            loop {
                let cursor: Option<String> = self
                    .store
                    .conn()
                    .query_row(
                        "SELECT cursor FROM sync_cursors WHERE kind = ?1",
                        [kind.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(StationError::db("reading a sync cursor"))?;
                let path = match &cursor {
                    Some(c) => format!(
                        "/api/v1/sync/{}?cursor={}&limit={}",
                        kind.as_str(),
                        percent(c),
                        opts.page_limit
                    ),
                    None => format!("/api/v1/sync/{}?limit={}", kind.as_str(), opts.page_limit),
                };
                let what = format!("sync of {}", kind.as_str());
                let page: SyncPage = self
                    .with_retries(opts, &what, progress, || {
                        client.get_json::<SyncPage>(&what, &path)
                    })
                    .await
                    .map_err(|e| server_err(&what, &e))?;
                if page.kind != kind {
                    return Err(StationError::Server {
                        context: what,
                        detail: format!("the server sent a page of {} instead", page.kind.as_str()),
                        code: None,
                    });
                }
                let now = self.clock.now();
                let n = u64::try_from(page.items.len()).unwrap_or(0);
                self.store.tx(|tx| {
                    for item in &page.items {
                        if item.deleted {
                            tx.execute(
                                "DELETE FROM sync_items WHERE kind = ?1 AND key = ?2",
                                params![kind.as_str(), item.key],
                            )
                        } else {
                            tx.execute(
                                "INSERT INTO sync_items (kind, key, version, body) VALUES (?1, ?2, ?3, ?4)
                                 ON CONFLICT(kind, key) DO UPDATE SET version = ?3, body = ?4",
                                params![kind.as_str(), item.key, item.version, item.body.to_string()],
                            )
                        }
                        .map_err(StationError::db("storing synced items"))?;
                    }
                    tx.execute(
                        "INSERT INTO sync_cursors (kind, cursor, synced_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT(kind) DO UPDATE SET cursor = ?2, synced_at = ?3",
                        params![kind.as_str(), page.next_cursor, now.to_rfc3339()],
                    )
                    .map_err(StationError::db("storing a sync cursor"))?;
                    Ok(())
                })?;
                if n > 0 {
                    *report
                        .master_data_items
                        .entry(kind.as_str().to_owned())
                        .or_default() += n;
                    if !changed.contains(&kind) {
                        changed.push(kind);
                    }
                    progress(&Progress::MasterData {
                        kind: kind.as_str().into(),
                        items: n,
                    });
                }
                if !page.has_more {
                    break;
                }
            }
        }
        self.apply_synced(&changed, report)
    }

    pub(crate) fn synced_items(&self, kind: SyncKind) -> Result<Vec<(String, i64, String)>> {
        let mut st = self
            .store
            .conn()
            .prepare_cached("SELECT key, version, body FROM sync_items WHERE kind = ?1 ORDER BY version")
            .map_err(StationError::db("reading synced items"))?;
        st.query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(StationError::db("reading synced items"))
    }

    /// The master-data documents the synced items describe, overlaid on those in force.
    fn assembled_documents(&self) -> Result<Option<Vec<Document>>> {
        let schemas = self.synced_items(SyncKind::IdSchema)?;
        let Some((_, _, schema_body)) = schemas.last() else {
            return Ok(None);
        };
        let mut docs: BTreeMap<String, Document> = BTreeMap::new();
        let mut st = self
            .store
            .conn()
            .prepare("SELECT name, version, body FROM master_data")
            .map_err(StationError::db("reading master data"))?;
        let current: Vec<Document> = st
            .query_map([], |r| {
                Ok(Document {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(StationError::db("reading master data"))?;
        drop(st);
        for d in current {
            docs.insert(d.name.clone(), d);
        }
        let mut put = |name: String, body: &str| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
            docs.insert(
                name.clone(),
                Document {
                    name,
                    version: doc_version(&v),
                    body: body.to_owned(),
                },
            );
        };
        put("id-schema".into(), schema_body);
        for (key, _, body) in self.synced_items(SyncKind::UiSpec)? {
            put(format!("ui-spec/{key}"), &body);
        }
        for (key, _, body) in self.synced_items(SyncKind::MasterData)? {
            put(document_name(&key), &body);
        }
        Ok(Some(docs.into_values().collect()))
    }

    fn apply_synced(&mut self, changed: &[SyncKind], report: &mut SyncReport) -> Result<()> {
        let mut problems = Vec::new();
        // Configuration: validated as a whole before it replaces the one in force.
        if let Some(docs) = self.assembled_documents()? {
            let differs = docs.iter().any(|d| {
                self.store
                    .conn()
                    .query_row("SELECT body FROM master_data WHERE name = ?1", [&d.name], |r| {
                        r.get::<_, String>(0)
                    })
                    .map(|b| b != d.body)
                    .unwrap_or(true)
            });
            if differs {
                match self.apply_master_data(&docs) {
                    Ok(()) => report.master_data_applied = true,
                    Err(e) => problems.push(format!(
                        "the server's configuration was not applied, the previous one stays in force: {e}"
                    )),
                }
            } else {
                self.mark_master_synced()?;
            }
        } else {
            self.mark_master_synced()?;
        }
        if changed.contains(&SyncKind::Operators) {
            let items = self.synced_items(SyncKind::Operators)?;
            let mut ops = Vec::new();
            let mut bad = None;
            for (key, _, body) in &items {
                match serde_json::from_str::<Operator>(body) {
                    Ok(o) => ops.push(o),
                    Err(e) => bad = Some(format!("operator {key}: {e}")),
                }
            }
            let version = items.last().map(|(_, v, _)| v.to_string()).unwrap_or_default();
            match bad {
                Some(b) => problems.push(format!("the server's operator list was not applied: {b}")),
                None if ops.is_empty() => {}
                None => {
                    let bundle = OperatorBundle {
                        version,
                        operators: ops,
                    };
                    // The same checks as a local bundle.
                    let bytes = serde_json::to_vec(&bundle).unwrap_or_default();
                    match OperatorBundle::parse(&bytes) {
                        Ok(b) => {
                            self.apply_operators(&b)?;
                            report.master_data_applied = true;
                        }
                        Err(e) => problems.push(format!("the server's operator list was not applied: {e}")),
                    }
                }
            }
        }
        if changed.contains(&SyncKind::PacketKeys) {
            let mut recipients = Vec::new();
            for (key, _, body) in self.synced_items(SyncKind::PacketKeys)? {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                match v.get("recipient").and_then(|r| r.as_str()) {
                    Some(r) => recipients.push(r.to_owned()),
                    None => problems.push(format!("packet key {key} has no recipient")),
                }
            }
            if !recipients.is_empty() {
                let now = self.clock.now();
                self.store.tx(|tx| {
                    tx.execute("DELETE FROM packet_recipients", [])
                        .map_err(StationError::db("replacing packet-recipient keys"))?;
                    crate::workflow::store_recipients(tx, &recipients, now)?;
                    audit::append(
                        tx,
                        now,
                        "system",
                        "PACKET_KEYS_APPLIED",
                        "",
                        &format!("count={}", recipients.len()),
                    )?;
                    Ok(())
                })?;
                report.master_data_applied = true;
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StationError::ConfigInvalid {
                file: "synced master data".into(),
                detail: problems.join("; "),
            })
        }
    }

    fn mark_master_synced(&mut self) -> Result<()> {
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute(
                "UPDATE station SET last_master_sync = ?1 WHERE id = 1",
                [now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the master-data sync"))?;
            Ok(())
        })
    }

    /// PEM certificates of device providers delivered by sync (kind `certificates`, items with a `pem`
    /// field).
    pub fn synced_certificates(&self) -> Result<Vec<String>> {
        Ok(self
            .synced_items(SyncKind::Certificates)?
            .into_iter()
            .filter_map(|(_, _, body)| {
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("pem").and_then(|p| p.as_str()).map(str::to_owned))
            })
            .collect())
    }
}
