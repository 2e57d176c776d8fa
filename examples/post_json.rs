//! POST a JSON body with the blocking client and print the answer.
//!
//! ```text
//! cargo run --example post_json                    # against a loopback echo server it starts
//! cargo run --example post_json -- http://host/path
//! ```
//!
//! With the `json` feature the request builder serializes the payload
//! and sets `Content-Type` in one call, `.json(&payload)`, and the answer
//! can be read typed in one call, `response.body_mut().json::<T>(limit)`;
//! here the body is serialized by hand and the answer read as text
//! (decoded with the charset of its `Content-Type`) so the example runs
//! with the default features.

use std::io::{Read, Write};
use std::net::TcpListener;

use roundtrip::ResponseExt;
use roundtrip::blocking::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("http://{}/echo", spawn_echo()?),
    };
    let payload = serde_json::json!({ "name": "roundtrip", "stars": 5 });
    let client = Client::new();
    let mut response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(serde_json::to_vec(&payload)?)
        .send()?
        .error_for_status()?;
    let from = response.url().map_or(url.clone(), ToString::to_string);
    println!("{} from {from}", response.status());
    let text = response.body_mut().text(1 << 20)?;
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    println!("{answer:#}");
    Ok(())
}

/// A loopback server answering one `POST` with its own body, as JSON.
fn spawn_echo() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || -> std::io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        let (mut input, mut chunk) = (Vec::new(), [0; 4096]);
        let end = loop {
            if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = socket.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            input.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&input[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while input.len() < end + len {
            let n = socket.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            input.extend_from_slice(&chunk[..n]);
        }
        let body = &input[end..end + len];
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes())?;
        socket.write_all(body)
    });
    Ok(addr)
}
