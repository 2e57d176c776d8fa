//! Stream a response body to a file, printing progress, without holding it
//! in memory.
//!
//! ```text
//! cargo run --example download                          # 4 MiB from a loopback origin it starts
//! cargo run --example download -- http://host/file out.bin
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};

use roundtrip::ResponseExt;
use roundtrip::http::header::CONTENT_LENGTH;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = match args.next() {
        Some(url) => url,
        // `roundtrip::origin`: a loopback server answering every request
        // with a body of this many bytes.
        None => format!("http://{}/file", roundtrip::origin::spawn(4 << 20)?),
    };
    let (path, temporary) = match args.next() {
        Some(path) => (path.into(), false),
        None => (
            std::env::temp_dir().join(format!("roundtrip-download-{}", std::process::id())),
            true,
        ),
    };

    let client = roundtrip::blocking::Client::new();
    let mut response = client.get(&url).send()?.error_for_status()?;
    let total: Option<u64> = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let mut file = BufWriter::new(File::create(&path)?);
    let (mut written, mut shown) = (0u64, 0u64);
    // Each piece as it arrives, zero-copy from the socket's buffer.
    while let Some(piece) = response.body_mut().chunk()? {
        file.write_all(&piece)?;
        written += piece.len() as u64;
        if written - shown >= 512 * 1024 {
            shown = written;
            progress(written, total);
        }
    }
    file.flush()?;
    progress(written, total);
    println!(
        "\n{} -> {} ({written} bytes)",
        response.url().map_or(url.to_string(), ToString::to_string),
        path.display()
    );
    if temporary {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

fn progress(written: u64, total: Option<u64>) {
    match total {
        Some(total) if total > 0 => {
            print!("\r{written}/{total} bytes ({}%)", written * 100 / total)
        }
        _ => print!("\r{written} bytes"),
    }
    let _ = std::io::stdout().flush();
}
