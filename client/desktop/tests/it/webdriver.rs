//! A small W3C WebDriver client over reqwest: just what the desktop test needs (session, find, type, click,
//! text, script, delete). Errors carry the driver's own `error` and `message`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key naming an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
}

/// A WebDriver answer that is an error, or a transport failure.
#[derive(Debug)]
pub struct WdError(pub String);

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type WdResult<T> = Result<T, WdError>;

async fn send(req: reqwest::RequestBuilder, what: &str) -> WdResult<Value> {
    let res = req.send().await.map_err(|e| WdError(format!("{what}: {e}")))?;
    let status = res.status();
    let body: Value = res
        .json()
        .await
        .map_err(|e| WdError(format!("{what}: answer is not JSON: {e}")))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(WdError(format!(
            "{what}: HTTP {status}: {} {}",
            value["error"].as_str().unwrap_or("?"),
            value["message"].as_str().unwrap_or("")
        )));
    }
    Ok(value)
}

/// Waits until the driver answers `GET /status` with `ready: true`.
pub async fn wait_ready(base: &str, timeout: Duration) -> WdResult<()> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match send(http.get(format!("{base}/status")), "status").await {
            Ok(v) if v["ready"].as_bool() != Some(false) => return Ok(()),
            Ok(v) => last = v.to_string(),
            Err(e) => last = e.0,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(WdError(format!(
        "the WebDriver at {base} is not ready after {timeout:?}: {last}"
    )))
}

impl Session {
    /// Starts a session with these capabilities (`alwaysMatch`).
    pub async fn new(base: &str, always_match: Value) -> WdResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| WdError(e.to_string()))?;
        let v = send(
            http.post(format!("{base}/session"))
                .json(&json!({"capabilities": {"alwaysMatch": always_match}})),
            "new session",
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| WdError(format!("new session: no sessionId in {v}")))?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            id,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    async fn post(&self, path: &str, body: Value, what: &str) -> WdResult<Value> {
        send(self.http.post(self.url(path)).json(&body), what).await
    }

    async fn get(&self, path: &str, what: &str) -> WdResult<Value> {
        send(self.http.get(self.url(path)), what).await
    }

    /// Finds one element by CSS selector (now, no waiting).
    pub async fn find(&self, css: &str) -> WdResult<String> {
        let v = self
            .post(
                "/element",
                json!({"using": "css selector", "value": css}),
                &format!("find {css}"),
            )
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| WdError(format!("find {css}: no element reference in {v}")))
    }

    /// Waits for an element matching `css` whose text contains `text` (empty: any), up to `timeout`.
    pub async fn wait_text(&self, css: &str, text: &str, timeout: Duration) -> WdResult<String> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            match self.find(css).await {
                Ok(el) => match self.text(&el).await {
                    Ok(t) if t.contains(text) => return Ok(t),
                    Ok(t) => last = format!("text is {t:?}"),
                    Err(e) => last = e.0,
                },
                Err(e) => last = e.0,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(WdError(format!(
            "no {css} containing {text:?} after {timeout:?} (last: {last})"
        )))
    }

    /// The element's visible text.
    pub async fn text(&self, el: &str) -> WdResult<String> {
        let v = self.get(&format!("/element/{el}/text"), "element text").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Types into an element.
    pub async fn type_into(&self, el: &str, text: &str) -> WdResult<()> {
        self.post(
            &format!("/element/{el}/value"),
            json!({"text": text}),
            "send keys",
        )
        .await
        .map(drop)
    }

    /// Empties an input.
    pub async fn clear(&self, el: &str) -> WdResult<()> {
        self.post(&format!("/element/{el}/clear"), json!({}), "clear")
            .await
            .map(drop)
    }

    /// Clicks an element.
    pub async fn click(&self, el: &str) -> WdResult<()> {
        self.post(&format!("/element/{el}/click"), json!({}), "click")
            .await
            .map(drop)
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, script: &str) -> WdResult<Value> {
        self.script_with(script, json!([])).await
    }

    /// Runs a script with arguments (`arguments[0]`, ...) and returns its value.
    pub async fn script_with(&self, script: &str, args: Value) -> WdResult<Value> {
        self.post(
            "/execute/sync",
            json!({"script": script, "args": args}),
            "execute script",
        )
        .await
    }

    /// Waits until `script` (run with `args`) returns `true`, up to `timeout`.
    pub async fn wait_script(&self, script: &str, args: Value, timeout: Duration) -> WdResult<()> {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < timeout {
            match self.script_with(script, args.clone()).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(v) => last = v,
                Err(e) => last = Value::String(e.0),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(WdError(format!(
            "{script} with {args} is not true after {timeout:?} (last: {last})"
        )))
    }

    /// Ends the session (WebKitWebDriver closes the app). WebKitWebDriver allows one session at a time, so
    /// this must run also when a step failed.
    pub async fn delete(self) -> WdResult<()> {
        send(self.http.delete(self.url("")), "delete session")
            .await
            .map(drop)
    }
}
