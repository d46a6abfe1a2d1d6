//! A small terminal chat client for Parley: logs in over REST, opens `GET /ws`, syncs the
//! history with one peer, then sends each line typed on stdin and prints what arrives.
//! It speaks protocol v2: it sends `{"type":"send","receiverId":..,"content":..,
//! "clientId":..}` and reads the message object's `conversationId`, `sender` and
//! `content`.
//!
//! Try it in two terminals, with a server running
//! (`cargo run -- serve --data-dir /tmp/chat-demo --listen 127.0.0.1:8080`):
//!
//! ```text
//! # terminal 1 (the first run creates the account; leave out --register and --name later)
//! cargo run --example chat -- --register --name Ada \
//!     --email ada@example.com --password 'correct horse' --to bob@example.com
//! # terminal 2 (Ada's client waits until Bob has an account)
//! cargo run --example chat -- --register --name Bob \
//!     --email bob@example.com --password 'battery staple' --to ada@example.com
//! ```
//!
//! Type a line and press Enter to send it; Ctrl-D quits. With `--raw` every frame is
//! printed as it goes by (`->` sent, `<-` received), and a typed line starting with `{`
//! is sent as it is. See `docs/protocol.md`.

use std::collections::HashSet;
use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type AnyResult<T> = Result<T, Box<dyn Error>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    /// Print every frame as JSON, and send lines starting with `{` as they are.
    #[arg(long)]
    raw: bool,
}

/// Sends a request with an optional bearer token: the JSON answer, `Null` for an error
/// whose code is in `allowed`, or `code: message` from the error envelope.
async fn call(
    req: reqwest::RequestBuilder,
    token: Option<&str>,
    allowed: &[&str],
) -> AnyResult<Value> {
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let res = req.send().await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let code = body["error"]["code"].as_str().unwrap_or_default();
    if allowed.contains(&code) {
        return Ok(Value::Null);
    }
    let message = body["error"]["message"].as_str().unwrap_or_default();
    Err(format!("{code}: {message} (HTTP {status})").into())
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

/// Sends one frame (echoed with `--raw`).
async fn send(ws: &mut Ws, raw: bool, frame: &Frame<'_>) -> AnyResult<()> {
    let text = serde_json::to_string(frame)?;
    if raw {
        println!("-> {text}");
    }
    Ok(ws.send(WsMessage::text(text)).await?)
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let args = Args::parse();
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
    let auth = call(req, None, &[]).await?;
    let token = auth["token"]
        .as_str()
        .ok_or("no token in the answer")?
        .to_owned();

    // 2. The peer: a contact (already being one is fine), then their id from the list. A
    // peer without an account yet is waited for, so the two sides may start in any order.
    loop {
        let req = http
            .post(format!("{base}/api/contact/add-contact"))
            .json(&json!({"email": args.to}));
        match call(req, Some(&token), &["already_contact"]).await {
            Err(e) if e.to_string().starts_with("user_not_found") => {
                println!("* waiting for {} to register…", args.to);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => break other.map(drop)?,
        }
    }
    let req = http.get(format!("{base}/api/contact/contacts"));
    let contacts = call(req, Some(&token), &[]).await?;
    let peer = contacts["contacts"]
        .as_array()
        .and_then(|cs| {
            cs.iter().find(|c| {
                c["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&args.to))
            })
        })
        .ok_or("the peer is not in the contact list")?;
    let peer_id = peer["id"].as_str().unwrap_or_default().to_owned();
    let peer_name = peer["name"].as_str().unwrap_or("?").to_owned();
    // The 1:1 conversation's id (derived from the two users, so known before it exists).
    let req = http.get(format!("{base}/api/messages/{peer_id}?limit=1"));
    let page = call(req, Some(&token), &[]).await?;
    let conversation = page["conversationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // 3. The WebSocket, authenticated with the bearer header.
    let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;

    let run_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let mut counter = 0u64;
    let mut unacked: HashSet<String> = HashSet::new();
    let mut my_id = String::new();
    // Stdin on a plain thread: a blocking read there does not hold up the exit.
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin_open = true;
    let mut closing = false;
    let linger = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(linger);

    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(close))) => {
                        match close {
                            _ if closing => println!("* bye"),
                            Some(c) => println!("* closed by the server: {} {}", u16::from(c.code), c.reason),
                            None => println!("* closed by the server"),
                        }
                        break;
                    }
                    Some(Ok(_)) => continue, // pings are answered by tungstenite
                    // After our close, the server may drop the connection without replying.
                    Some(Err(_)) | None if closing => {
                        println!("* bye");
                        break;
                    }
                    Some(Err(e)) => return Err(format!("connection lost: {e}").into()),
                    None => break,
                };
                if args.raw {
                    println!("<- {text}");
                }
                let f: Value = serde_json::from_str(text.as_str())?;
                match f["type"].as_str().unwrap_or_default() {
                    "ready" => {
                        let u = &f["user"];
                        my_id = u["id"].as_str().unwrap_or_default().to_owned();
                        println!("* connected as {} <{}>; chatting with {peer_name}", u["name"].as_str().unwrap_or("?"), u["email"].as_str().unwrap_or("?"));
                        send(&mut ws, args.raw, &Frame::Sync { cursors: &json!({}) }).await?;
                    }
                    "message" => {
                        let m = &f["message"];
                        if m["conversationId"] != conversation.as_str() {
                            continue; // another conversation of ours
                        }
                        let who = if m["sender"] == my_id.as_str() { "you" } else { &peer_name };
                        println!("[{}] {who}: {}", m["seq"], m["content"].as_str().unwrap_or_default());
                    }
                    "synced" if f["more"] == true => {
                        // The replay was capped: continue from where it stopped.
                        send(&mut ws, args.raw, &Frame::Sync { cursors: &f["cursors"] }).await?;
                    }
                    "synced" => println!("* up to date"),
                    "ack" => {
                        let dup = if f["duplicate"] == true { " (duplicate)" } else { "" };
                        println!("  ✓ #{}{dup}", f["message"]["seq"]);
                        unacked.remove(f["clientId"].as_str().unwrap_or_default());
                    }
                    "error" => {
                        let retry = f["retryAfterMs"].as_u64().map(|ms| format!(" (retry in {ms} ms)")).unwrap_or_default();
                        println!("! {}: {}{retry}", f["code"].as_str().unwrap_or("?"), f["message"].as_str().unwrap_or_default());
                        unacked.remove(f["clientId"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) if args.raw && line.starts_with('{') => {
                    ws.send(WsMessage::text(line)).await?;
                }
                Some(line) => {
                    counter += 1;
                    let client_id = format!("chat-{run_id}-{counter}");
                    let frame = Frame::Send { receiver_id: &peer_id, content: &line, client_id: &client_id };
                    send(&mut ws, args.raw, &frame).await?;
                    unacked.insert(client_id);
                }
                None => {
                    // EOF: wait (briefly) for the acks still owed, then close.
                    stdin_open = false;
                    linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                }
            },
            () = &mut linger => unacked.clear(),
        }
        if !stdin_open && unacked.is_empty() && !closing {
            closing = true;
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            };
            ws.send(WsMessage::Close(Some(frame))).await?;
        }
    }
    Ok(())
}
