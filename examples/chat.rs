//! A small terminal chat client for Parley: logs in over REST, opens `GET /ws`, syncs the
//! history with one peer, then sends each line typed on stdin and prints what arrives.
//! When the connection drops (a server restart, say) it reconnects with backoff, syncs
//! what it missed and resends what was not acked, with the same `clientId`, so nothing
//! is lost or stored twice. It speaks protocol v2 (`docs/protocol.md`).
//!
//! With the server running (`cargo run --release -- serve`) and the two accounts of the
//! README's walkthrough, in two terminals:
//!
//! ```text
//! # terminal 1
//! cargo run --release --example chat -- --email ada@example.com --password 'correct horse battery' --to bob@example.com
//! # terminal 2
//! cargo run --release --example chat -- --email bob@example.com --password 'hunter2 hunter2' --to ada@example.com
//! ```
//!
//! (`--release`, like the server: the build is shared instead of compiling a second,
//! debug dependency tree.) Without the walkthrough's accounts, add `--register --name
//! Ada` to create one. A peer who has no account yet is waited for (`--wait`, 60 s by
//! default), so the two sides may start in any order; a mistyped `--to` ends there.
//!
//! Type a line and press Enter to send it; Ctrl-D quits. With `--raw` every frame is
//! printed as it goes by (`->` sent, `<-` received), and a typed line starting with `{`
//! is sent as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type AnyResult<T> = Result<T, Box<dyn Error>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A terminal chat client for Parley.
#[derive(Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Your email.
    #[arg(long)]
    email: String,
    /// Your password.
    #[arg(long)]
    password: String,
    /// Email of the person to chat with.
    #[arg(long)]
    to: String,
    /// Create the account first (needs --name).
    #[arg(long, requires = "name")]
    register: bool,
    /// Your display name, for --register.
    #[arg(long)]
    name: Option<String>,
    /// How long to wait for the person to chat with to register (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// Print every frame as JSON, and send lines starting with `{` as they are.
    #[arg(long)]
    raw: bool,
}

/// An error for a person: a sentence, with its causes, never a Debug dump.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Failure {}

fn fail(message: impl Into<String>) -> Box<dyn Error> {
    Box::new(Failure(message.into()))
}

/// `e` and each of its causes, joined: "cannot reach …: connection refused".
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// An error answer of the API: its code and sentence.
struct ApiFailure {
    code: String,
    message: String,
}

/// Sends a request with an optional bearer token: the JSON answer, or the error
/// envelope's code and message (`Err(Ok)`), or why the server could not be reached.
async fn call(
    req: reqwest::RequestBuilder,
    token: Option<&str>,
) -> AnyResult<Result<Value, ApiFailure>> {
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let res = req
        .send()
        .await
        .map_err(|e| fail(format!("cannot reach the server: {}", chain(&e))))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Ok(body));
    }
    Ok(Err(ApiFailure {
        code: body["error"]["code"]
            .as_str()
            .unwrap_or("http_error")
            .to_owned(),
        message: body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned),
    }))
}

/// The answer, or the API's refusal as an error for a person.
fn answered(result: Result<Value, ApiFailure>, doing: &str) -> AnyResult<Value> {
    result.map_err(|f| fail(format!("{doing}: {} ({})", f.message, f.code)))
}

/// The client frames this client sends, typed like the server's (camelCase, `type`
/// first).
#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum Frame<'a> {
    /// A message to the peer; `clientId` is its retry key.
    Send {
        receiver_id: &'a str,
        content: &'a str,
        client_id: &'a str,
    },
    /// Replay what was missed after these cursors (`{}`: everything).
    Sync { cursors: &'a Value },
}

/// What the client keeps across connections.
struct Chat {
    raw: bool,
    peer_id: String,
    peer_name: String,
    conversation: String,
    /// Seqs of this conversation already printed.
    seen: BTreeSet<u64>,
    /// Sends not yet acked, by clientId: resent after every reconnect.
    unacked: BTreeMap<String, String>,
    run_id: u128,
    counter: u64,
}

impl Chat {
    /// Every seq from 1 up to this one has been printed: where `sync` starts.
    fn cursor(&self) -> u64 {
        let mut cursor = 0;
        while self.seen.contains(&(cursor + 1)) {
            cursor += 1;
        }
        cursor
    }
}

/// How a connection ended.
enum Ended {
    /// The user is done (Ctrl-D) and every send is acked, or given up on.
    Quit,
    /// The connection dropped or the server closed it: reconnect.
    Lost(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> AnyResult<()> {
    let base = args.server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();

    // 1. An account and a token.
    let mut body = json!({"email": args.email, "password": args.password});
    let route = if args.register {
        body["name"] = json!(args.name);
        "register"
    } else {
        "login"
    };
    let req = http.post(format!("{base}/api/auth/{route}")).json(&body);
    let auth = answered(call(req, None).await?, route)?;
    let token = auth["token"]
        .as_str()
        .ok_or_else(|| fail("no token in the answer"))?
        .to_owned();

    // 2. The peer: a contact (already being one is fine), then their id from the list. A
    // peer without an account yet is waited for, up to --wait.
    let deadline = Instant::now() + args.wait;
    loop {
        let req = http
            .post(format!("{base}/api/contact/add-contact"))
            .json(&json!({"email": args.to}));
        match call(req, Some(&token)).await? {
            Ok(_) => break,
            Err(f) if f.code == "already_contact" => break,
            Err(f) if f.code == "user_not_found" => {
                if Instant::now() >= deadline {
                    return Err(fail(format!(
                        "no account has the email {} (waited {}); check --to",
                        args.to,
                        humantime::format_duration(args.wait)
                    )));
                }
                println!(
                    "* {} has no account yet; waiting (check --to if it is mistyped)…",
                    args.to
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(f) => {
                return Err(fail(format!(
                    "adding {}: {} ({})",
                    args.to, f.message, f.code
                )));
            }
        }
    }
    let req = http.get(format!("{base}/api/contact/contacts"));
    let contacts = answered(call(req, Some(&token)).await?, "listing contacts")?;
    let peer = contacts["contacts"]
        .as_array()
        .and_then(|cs| {
            cs.iter().find(|c| {
                c["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&args.to))
            })
        })
        .ok_or_else(|| fail("the peer is not in the contact list"))?;
    let peer_id = peer["id"].as_str().unwrap_or_default().to_owned();
    // The 1:1 conversation's id (derived from the two users, so known before it exists).
    let req = http.get(format!("{base}/api/messages/{peer_id}?limit=1"));
    let page = answered(call(req, Some(&token)).await?, "reading the history")?;
    let mut chat = Chat {
        raw: args.raw,
        peer_name: peer["name"].as_str().unwrap_or("?").to_owned(),
        peer_id,
        conversation: page["conversationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        seen: BTreeSet::new(),
        unacked: BTreeMap::new(),
        run_id: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis(),
        counter: 0,
    };

    // Stdin on a plain thread: a blocking read there does not hold up the exit. Lines
    // typed while disconnected wait in the channel.
    let (line_tx, mut lines) = mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    // 3. Sessions, one after another, until the user quits.
    let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
    let mut attempt = 0u32;
    loop {
        match connect(&ws_url, &token).await {
            Ok(ws) => {
                attempt = 0;
                match session(ws, &mut chat, &mut lines).await? {
                    Ended::Quit => return Ok(()),
                    Ended::Lost(why) => println!("* {why}; reconnecting…"),
                }
            }
            Err(e) => {
                if attempt == 0 {
                    println!("* cannot connect ({e}); retrying…");
                }
            }
        }
        // Exponential backoff with jitter, so a restarted server is not stampeded.
        let base_wait = Duration::from_millis(250 << attempt.min(6)).min(MAX_BACKOFF);
        let jitter = SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos() % 250;
        tokio::time::sleep(base_wait + Duration::from_millis(u64::from(jitter))).await;
        attempt += 1;
    }
}

/// Opens `/ws` with the bearer header. A refused token ends the program; anything
/// else is worth another try.
async fn connect(url: &str, token: &str) -> Result<Ws, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {token}").parse().map_err(|_| "bad token")?;
    request.headers_mut().insert("authorization", bearer);
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(res)) if res.status() == 401 => {
            eprintln!("chat: the server refused the token; log in again");
            std::process::exit(1);
        }
        Err(e) => Err(chain(&e)),
    }
}

/// Sends one frame (echoed with `--raw`).
async fn send(ws: &mut Ws, raw: bool, frame: &Frame<'_>) -> AnyResult<()> {
    let text = serde_json::to_string(frame)?;
    if raw {
        println!("-> {text}");
    }
    Ok(ws.send(WsMessage::text(text)).await?)
}

/// One connection: sync, resend what is unacked, then chat until it ends.
async fn session(
    mut ws: Ws,
    chat: &mut Chat,
    lines: &mut mpsc::Receiver<String>,
) -> AnyResult<Ended> {
    let mut stdin_open = true;
    let mut closing = false;
    let linger = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(linger);
    // A failed write means the connection is gone: reconnect.
    macro_rules! write {
        ($frame:expr) => {
            if let Err(e) = send(&mut ws, chat.raw, $frame).await {
                return Ok(Ended::Lost(format!(
                    "connection lost: {}",
                    chain(e.as_ref())
                )));
            }
        };
    }

    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(close))) => {
                        if closing {
                            println!("* bye");
                            return Ok(Ended::Quit);
                        }
                        let (code, reason) = close.map_or((1005, String::new()), |c| (u16::from(c.code), c.reason.to_string()));
                        if matches!(code, 4001 | 4003) {
                            return Err(fail(format!("the session ended: {reason} ({code}); log in again")));
                        }
                        return Ok(Ended::Lost(format!("closed by the server: {reason} ({code})")));
                    }
                    Some(Ok(_)) => continue, // pings are answered by tungstenite
                    // After our close, the server may drop the connection without replying.
                    Some(Err(_)) | None if closing => {
                        println!("* bye");
                        return Ok(Ended::Quit);
                    }
                    Some(Err(e)) => return Ok(Ended::Lost(format!("connection lost: {}", chain(&e)))),
                    None => return Ok(Ended::Lost("connection lost".into())),
                };
                if chat.raw {
                    println!("<- {text}");
                }
                let Ok(f) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                match f["type"].as_str().unwrap_or_default() {
                    "ready" => {
                        let u = &f["user"];
                        println!("* connected as {} <{}>; chatting with {}", u["name"].as_str().unwrap_or("?"), u["email"].as_str().unwrap_or("?"), chat.peer_name);
                        let cursors = json!({ chat.conversation.clone(): chat.cursor() });
                        write!(&Frame::Sync { cursors: &cursors });
                    }
                    "message" => {
                        let m = &f["message"];
                        if m["conversationId"] != chat.conversation.as_str() {
                            continue; // another conversation of ours
                        }
                        let seq = m["seq"].as_u64().unwrap_or_default();
                        if !chat.seen.insert(seq) {
                            continue; // printed before a reconnect
                        }
                        if let Some(id) = m["clientId"].as_str() {
                            chat.unacked.remove(id); // ours, stored before the ack was lost
                        }
                        let who = if m["sender"] == chat.peer_id.as_str() { chat.peer_name.as_str() } else { "you" };
                        println!("[{seq}] {who}: {}", m["content"].as_str().unwrap_or_default());
                    }
                    "synced" if f["more"] == true => {
                        // The replay was capped: continue from where it stopped.
                        write!(&Frame::Sync { cursors: &f["cursors"] });
                    }
                    "synced" => {
                        println!("* up to date");
                        // Same clientId: a send that went through comes back as a duplicate.
                        let pending: Vec<(String, String)> = chat.unacked.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        for (client_id, content) in pending {
                            let peer = chat.peer_id.clone();
                            write!(&Frame::Send { receiver_id: &peer, content: &content, client_id: &client_id });
                        }
                    }
                    "ack" => {
                        let dup = if f["duplicate"] == true { " (duplicate)" } else { "" };
                        println!("  ✓ #{}{dup}", f["message"]["seq"]);
                        if let Some(seq) = f["message"]["seq"].as_u64() {
                            chat.seen.insert(seq);
                        }
                        chat.unacked.remove(f["clientId"].as_str().unwrap_or_default());
                    }
                    "error" => {
                        let retry = f["retryAfterMs"].as_u64().map(|ms| format!(" (retry in {ms} ms)")).unwrap_or_default();
                        println!("! {}: {}{retry}", f["code"].as_str().unwrap_or("?"), f["message"].as_str().unwrap_or_default());
                        chat.unacked.remove(f["clientId"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) if chat.raw && line.starts_with('{') => {
                    if let Err(e) = ws.send(WsMessage::text(line)).await {
                        return Ok(Ended::Lost(format!("connection lost: {}", chain(&e))));
                    }
                }
                Some(line) => {
                    chat.counter += 1;
                    let client_id = format!("chat-{}-{}", chat.run_id, chat.counter);
                    chat.unacked.insert(client_id.clone(), line.clone());
                    let peer = chat.peer_id.clone();
                    write!(&Frame::Send { receiver_id: &peer, content: &line, client_id: &client_id });
                }
                None => {
                    // EOF: wait (briefly) for the acks still owed, then close.
                    stdin_open = false;
                    linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                }
            },
            () = &mut linger => chat.unacked.clear(),
        }
        if !stdin_open && chat.unacked.is_empty() && !closing {
            closing = true;
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            };
            if ws.send(WsMessage::Close(Some(frame))).await.is_err() {
                return Ok(Ended::Quit);
            }
        }
    }
}
