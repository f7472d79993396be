//! The CUDA kernels compiled for the host (through `host_shim.h`) behind the CUDA
//! backend's `Launcher` trait, so the backend's host logic and the `.cu` sources run
//! without a GPU.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use cpc_accel::AccelError;
use cpc_accel::BackendKind;
use cpc_accel::gpu::cuda::{Kernel, Launcher};

struct Harness {
    _child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
}

/// One harness process, fed launch by launch.
pub struct HostLauncher {
    harness: Mutex<Harness>,
}

/// The harness directory of a test process is this prefix and its process id.
const PREFIX: &str = "cpc-cuda-host-";

/// Removes the harness directories of test processes that have ended (a running harness
/// needs its binary, so a process cannot remove its own).
fn remove_ended(tmp: &std::path::Path) {
    if !cfg!(target_os = "linux") {
        return; // liveness is read from /proc
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Compiles the harness once per test binary, with AddressSanitizer and
/// UndefinedBehaviorSanitizer when the compiler has them, so an out-of-bounds access or
/// an oversized shift in a kernel fails the test instead of passing unnoticed.
fn harness_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        remove_ended(&std::env::temp_dir());
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("host_shim.h", cpc_kernels::cuda::HOST_SHIM),
            ("host_harness.cpp", cpc_kernels::cuda::HOST_HARNESS),
            ("sha256.cu", cpc_kernels::cuda::SHA256),
            ("ed25519.cu", cpc_kernels::cuda::ED25519),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let bin = dir.join("harness");
        let compile = |extra: &[&str]| {
            Command::new(&cxx)
                .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"])
                .args(extra)
                .arg("-o")
                .arg(&bin)
                .arg(dir.join("host_harness.cpp"))
                .output()
                .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx:?}: {e}; install build-essential (deploy/setup.sh)"))
        };
        let sanitized = compile(&["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]);
        if !sanitized.status.success() {
            let plain = compile(&[]);
            assert!(
                plain.status.success(),
                "the CUDA kernels do not compile as host C++:\n{}",
                String::from_utf8_lossy(&plain.stderr)
            );
        }
        bin
    })
}

impl HostLauncher {
    pub fn start() -> Self {
        let mut child = Command::new(harness_binary())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the harness starts");
        let input = BufWriter::new(child.stdin.take().unwrap());
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            harness: Mutex::new(Harness {
                _child: child,
                input,
                output,
            }),
        }
    }
}

fn harness_error(e: &std::io::Error) -> AccelError {
    AccelError::Device {
        kind: BackendKind::Cuda,
        message: format!("host harness: {e} (see its stderr above)"),
    }
}

impl Launcher for HostLauncher {
    type Buffer = Vec<u32>;

    fn describe(&self) -> String {
        "CUDA kernels compiled for the host (test harness)".into()
    }

    fn upload(&self, words: &[u32]) -> Result<Vec<u32>, AccelError> {
        Ok(if words.is_empty() {
            vec![0]
        } else {
            words.to_vec()
        })
    }

    fn zeroed(&self, words: usize) -> Result<Vec<u32>, AccelError> {
        Ok(vec![0; words.max(1)])
    }

    fn launch(
        &self,
        kernel: Kernel,
        threads: usize,
        inputs: &[&Vec<u32>],
        output: &mut Vec<u32>,
        count: u32,
    ) -> Result<(), AccelError> {
        let mut h = self.harness.lock().unwrap();
        let mut req = vec![
            kernel.harness_id(),
            count,
            threads as u32,
            inputs.len() as u32,
        ];
        for b in inputs {
            req.push(b.len() as u32);
            req.extend_from_slice(b);
        }
        req.push(output.len() as u32);
        let bytes: Vec<u8> = req.iter().flat_map(|w| w.to_le_bytes()).collect();
        h.input.write_all(&bytes).map_err(|e| harness_error(&e))?;
        h.input.flush().map_err(|e| harness_error(&e))?;
        let mut answer = vec![0u8; output.len() * 4];
        h.output
            .read_exact(&mut answer)
            .map_err(|e| harness_error(&e))?;
        for (o, c) in output.iter_mut().zip(answer.chunks_exact(4)) {
            *o = u32::from_le_bytes(c.try_into().unwrap());
        }
        Ok(())
    }

    fn download(&self, buffer: &Vec<u32>, words: usize) -> Result<Vec<u32>, AccelError> {
        Ok(buffer[..words].to_vec())
    }
}
