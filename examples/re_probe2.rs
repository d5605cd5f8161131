use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
fn main() {
    let line =
        r#"175.148.109.34 - lavon [05/Feb/2023:09:39:56 +0000] "GET /fortunate HTTP/1.0" 404 4410"#
            .as_bytes();
    let mut set = [false; 256];
    for b in b'0'..=b'z' {
        set[b as usize] = true;
    }
    let n = 1_000_000;
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..n {
        let l = std::hint::black_box(line);
        let mut c = 0;
        for &b in l {
            c += set[b as usize] as usize;
        }
        total += c;
    }
    println!(
        "table scan: {:.2} ns/byte ({total})",
        t.elapsed().as_nanos() as f64 / (n * line.len()) as f64
    );
    let a = AtomicU64::new(0);
    let t = Instant::now();
    for _ in 0..n {
        a.fetch_add(1, Ordering::Relaxed);
    }
    println!(
        "atomic add: {:.2} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n {
        let v: Vec<u64> = Vec::with_capacity(8);
        std::hint::black_box(v);
    }
    println!(
        "malloc+free: {:.2} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
