//! Measures `append_events` throughput: batches of 10,000 synthetic events (an outbound and
//! two statuses per message, lines of realistic length, ids in random order as Meta's are)
//! into a fresh store, then the same batches again (all duplicates). Not a test: numbers depend on the machine.
//!
//! `cargo run --release -p wabill-store --example append_throughput -- [URL] [BATCHES]`
//! (URL defaults to a file in a temporary directory; BATCHES to 30, i.e. 300,000 events).

use std::time::Instant;
use wabill_store::NewEvent;

fn batch(n: usize, first_message: usize) -> Vec<NewEvent> {
    let mut out = Vec::with_capacity(n);
    let mut m = first_message;
    while out.len() < n {
        // Meta's ids end in random bytes: in no useful order for an index.
        let id = format!(
            "wamid.HBgNNTUxMTk4ODg4Nzc3NxUCABEYEjQ{:016X}",
            (m as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        let at = 1_751_364_000_000 + m as i64 * 37;
        let waba = format!("10{}", m % 50);
        let user = format!("55119{:08}", m % 100_000);
        out.push(NewEvent::outbound(
            &id,
            at,
            &waba,
            "15550001111",
            &user,
            format!(
                r#"{{"kind":"outbound","id":"{id}","at":{at},"waba":"{waba}","phone":"15550001111","user":"{user}","type":"template","category":"utility"}}"#
            ),
        ));
        for (k, s) in ["delivered", "read"].iter().enumerate() {
            let t = at + 1_000 * (k as i64 + 1);
            out.push(NewEvent::status(
                &id,
                *s,
                t,
                format!(r#"{{"kind":"status","id":"{id}","at":{t},"status":"{s}"}}"#),
            ));
        }
        m += 1;
    }
    out.truncate(n);
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| dir.path().join("bench.db").display().to_string());
    let batches: usize = args.get(2).map_or(Ok(30), |s| s.parse())?;
    let store = wabill_store::open(&url).await?;
    let data: Vec<Vec<NewEvent>> = (0..batches).map(|b| batch(10_000, b * 3_334)).collect();
    let total: usize = data.iter().map(Vec::len).sum();

    let t = Instant::now();
    let mut inserted = 0;
    for b in &data {
        inserted += store.append_events(b).await?.inserted.len();
    }
    let fresh = t.elapsed();
    let t = Instant::now();
    let mut duplicates = 0;
    for b in &data {
        duplicates += store.append_events(b).await?.duplicates;
    }
    let repeat = t.elapsed();
    println!(
        "{}: {total} events in batches of 10,000: new {:.0}/s ({inserted} stored in {fresh:.2?}), repeated {:.0}/s ({duplicates} duplicates in {repeat:.2?})",
        store.backend(),
        inserted as f64 / fresh.as_secs_f64(),
        duplicates as f64 / repeat.as_secs_f64(),
    );
    store.close().await?;
    Ok(())
}
