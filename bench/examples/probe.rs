//! Temporary probe (not committed).
use cpc_accel::FheMatcher;
use cpc_accel::fhe::{Encryptor, FheConfig, TfheMatcher, generate_keys};
use cpc_accel::matching::{FheJob, FheTask};
use std::time::Instant;

fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * 10.0
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(8, |s| s.parse().unwrap());
    let keys = generate_keys().unwrap();
    let enc = Encryptor::from_bytes(&keys.public_key).unwrap();
    let m = TfheMatcher::new(FheConfig {
        threads: 1,
        ..FheConfig::default()
    })
    .unwrap();
    m.load_key(&keys.server_key).unwrap();
    let job = FheJob {
        key: keys.key_id,
        task: FheTask::Nearest {
            rider: enc.rider(40, 60).unwrap(),
            drivers: (0..n)
                .map(|i| {
                    enc.driver((i * 37 % 128) as u8, (i * 91 % 128) as u8, i % 5 != 3)
                        .unwrap()
                })
                .collect(),
        },
    };
    for _ in 0..3 {
        let (c, t) = (cpu(), Instant::now());
        m.validate(&job).unwrap();
        println!(
            "validate: wall {:.1} ms cpu {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3,
            cpu() - c
        );
        let (c, t) = (cpu(), Instant::now());
        m.run(&job, &|_| {}).unwrap();
        println!(
            "run:      wall {:.0} ms cpu {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3,
            cpu() - c
        );
    }
}
