//! Profiling driver: frame + parse the guide regex repeatedly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use sluice::processors::regex_parser::{self, Config};
use sluice::receivers::http_logs::{Framing, frame};
fn main() {
    let guide = r#"^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$"#;
    let line =
        r#"175.148.109.34 - lavon [05/Feb/2023:09:39:56 +0000] "GET /fortunate HTTP/1.0" 404 4410"#;
    let body = bytes::Bytes::from(format!("{line}\n").repeat(2900));
    let mut p = regex_parser::standalone(&Config {
        regex: Some(guide.into()),
        parse_from: "body".into(),
        ..Default::default()
    })
    .unwrap();
    let t = std::time::Instant::now();
    for _ in 0..300 {
        let mut b = frame(body.clone(), Framing::NewlineDelimited, 1);
        p.process(&mut b);
        std::hint::black_box(&b);
    }
    println!(
        "{:.0} ns/line frame+parse+drop",
        t.elapsed().as_nanos() as f64 / (300.0 * 2900.0)
    );
}
