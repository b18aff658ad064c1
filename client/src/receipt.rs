//! The acknowledgement receipt handed to the resident: an HTML page with the RID in digits and as a QR
//! code, the process, date and center, and the resident's name in the entry languages. It is returned to
//! the caller to print or save; the station does not keep it unencrypted.

use qrcode::QrCode;
use qrcode::render::svg;
use tessera_packet::ids::CenterId;
use tessera_packet::types::PacketContent;

use crate::error::{Result, StationError};
use crate::masterdata::MasterData;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The receipt's texts (unescaped), shared by the HTML and PDF renderings.
pub(crate) struct ReceiptText {
    pub(crate) rid: String,
    pub(crate) lang: String,
    pub(crate) title: String,
    pub(crate) rid_label: String,
    pub(crate) keep: Vec<String>,
    pub(crate) process: String,
    pub(crate) names: Vec<String>,
    pub(crate) date: String,
    pub(crate) center_name: String,
}

impl ReceiptText {
    pub(crate) fn new(md: &MasterData, content: &PacketContent, center: &CenterId) -> Self {
        let langs: Vec<&str> = content.meta.languages.iter().map(String::as_str).collect();
        let label = |key: &str, lang: &str| {
            md.labels
                .get(lang)
                .and_then(|l| l.labels.get(key))
                .cloned()
                .unwrap_or_else(|| key.to_owned())
        };
        let all = |key: &str| {
            langs
                .iter()
                .map(|l| label(key, l))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let center_name = md
            .centers
            .centers
            .iter()
            .find(|c| c.id == center.as_str())
            .map(|c| {
                langs
                    .iter()
                    .filter_map(|l| c.name.get(*l))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_else(|| center.to_string());
        let names: Vec<String> = content
            .identity
            .get("fullName")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get("value").and_then(|v| v.as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            rid: content.rid.to_string(),
            lang: langs.first().copied().unwrap_or("eng").to_owned(),
            title: all("ack.title"),
            rid_label: all("ack.rid"),
            keep: langs.iter().map(|l| label("ack.keep", l)).collect(),
            process: all(&format!("process.{}", content.packet_type)),
            names,
            date: content.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            center_name,
        }
    }
}

/// Renders the receipt of a sealed registration.
pub fn html(md: &MasterData, content: &PacketContent, center: &CenterId) -> Result<String> {
    let t = ReceiptText::new(md, content, center);
    let rid = t.rid.clone();
    let qr = QrCode::new(rid.as_bytes())
        .map_err(|e| StationError::Packet {
            rid: rid.clone(),
            detail: format!("QR code: {e}"),
        })?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let keep = t
        .keep
        .iter()
        .map(|k| format!("<p>{}</p>", esc(k)))
        .collect::<String>();
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}} .rid{{font:bold 1.4em monospace;letter-spacing:.05em}} td{{padding:.2em .8em}}</style>
</head><body>
<h1>{title}</h1>
<div class="qr">{qr}</div>
<p>{rid_label}: <span class="rid" id="rid">{rid}</span></p>
<table>
<tr><td>{process}</td></tr>
<tr><td>{name}</td></tr>
<tr><td>{date}</td></tr>
<tr><td>{center_name}</td></tr>
</table>
{keep}
</body></html>
"#,
        lang = esc(&t.lang),
        title = esc(&t.title),
        rid_label = esc(&t.rid_label),
        process = esc(&t.process),
        name = t.names.iter().map(|n| esc(n)).collect::<Vec<_>>().join(" / "),
        date = t.date,
        center_name = esc(&t.center_name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_shows_rid_and_qr_and_escapes_names() {
        let md = MasterData::load_folder(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country"),
        )
        .unwrap();
        let mut c = tessera_packet::sample::sample_content(3, tessera_packet::sample::SampleSize::Small);
        c.identity["fullName"] =
            serde_json::json!([{"language": "eng", "value": "<script>x</script> O'Neil"}]);
        c.meta.languages = vec!["eng".into(), "fra".into()];
        let center: CenterId = "10001".parse().unwrap();
        let h = html(&md, &c, &center).unwrap();
        assert!(h.contains(&format!("id=\"rid\">{}</span>", c.rid)));
        assert!(h.contains("<svg"));
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt; O&#39;Neil"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("Registration acknowledgement / Accusé d&#39;enregistrement"));
        assert!(h.contains("Hillborough Central Registration Center"));
    }
}
