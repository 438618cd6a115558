//! Child processes of a cluster: started with their output in log files, watched for crashes,
//! and stopped in reverse order (SIGTERM, then SIGKILL after a deadline).
//!
//! Two guarantees keep a test run from leaving processes behind even when it is killed:
//! every child is started through `setpriv --pdeathsig KILL`, and all of them are forked by
//! one long-lived spawner thread. The kernel delivers the parent-death signal when the thread
//! that forked the child exits, so forking from a short-lived test or runtime worker thread
//! would kill the child early; the spawner thread only ends with the process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// A running child process with its log file.
#[derive(Debug)]
pub struct Component {
    name: String,
    child: Child,
    log: PathBuf,
    /// How long SIGTERM may take before SIGKILL.
    grace: Duration,
    exited: Option<ExitStatus>,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    pub grace: Duration,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static std::sync::Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("keda-conformance-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("the OS refused to start the spawner thread");
        std::sync::Mutex::new(tx)
    })
}

fn setpriv() -> Option<&'static Path> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            let found = ["/usr/bin/setpriv", "/bin/setpriv"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file());
            if found.is_none() {
                tracing::warn!(
                    "setpriv (util-linux) not found: components will not die with a killed test process"
                );
            }
            found
        })
        .as_deref()
}

/// Spawns a command from the spawner thread, so the parent-death signal fires only when the
/// whole process ends.
pub fn spawn_command(command: Command) -> std::io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((command, tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

impl Component {
    pub fn start(spec: Spec) -> Result<Self> {
        if let Some(parent) = spec.log.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let log = std::fs::File::create(&spec.log)
            .map_err(|e| Error::io(format!("creating {}", spec.log.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", spec.log.display()), e))?;
        let mut command = match setpriv() {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.arg("--pdeathsig")
                    .arg("KILL")
                    .arg("--")
                    .arg(&spec.program);
                c
            }
            None => Command::new(&spec.program),
        };
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Its own process group: a terminal's Ctrl-C reaches the test process, which then
        // stops the components in order, rather than all of them at once.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = spawn_command(command)
            .map_err(|e| Error::io(format!("starting {}", spec.program.display()), e))?;
        tracing::debug!(component = %spec.name, pid = child.id(), "started");
        Ok(Component {
            name: spec.name,
            child,
            log: spec.log,
            grace: spec.grace,
            exited: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Err(ComponentExited)` with the log tail when the process is no longer running.
    pub fn check(&mut self) -> Result<()> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("waiting for {}", self.name), e))?;
        }
        match self.exited {
            None => Ok(()),
            Some(status) => Err(Error::ComponentExited {
                component: self.name.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 25),
            }),
        }
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL; always reaps the child.
    pub fn stop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if !self.wait_for_exit(self.grace) {
            tracing::debug!(component = %self.name, "did not stop on SIGTERM; killing");
            let _ = self.child.kill();
            let _ = self.wait_for_exit(Duration::from_secs(10));
        }
    }

    fn wait_for_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return true;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Components in start order; stopped in reverse.
#[derive(Debug, Default)]
pub struct Components {
    started: Vec<Component>,
}

impl Components {
    pub fn push(&mut self, component: Component) {
        self.started.push(component);
    }

    pub fn check(&mut self) -> Result<()> {
        self.started.iter_mut().try_for_each(Component::check)
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.started
            .iter()
            .map(|c| (c.name.clone(), c.pid()))
            .collect()
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Component> {
        self.started.iter_mut().find(|c| c.name == name)
    }

    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        self.started
            .iter()
            .map(|c| (c.name.clone(), c.log.clone()))
            .collect()
    }

    /// Stops every component, last started first.
    pub fn stop_all(&mut self) {
        while let Some(mut component) = self.started.pop() {
            component.stop();
        }
    }
}

impl Drop for Components {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The last `lines` lines of a log file (or a note that it could not be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("  (log {} unreadable: {e})", path.display()),
    };
    let mut tail = VecDeque::with_capacity(lines);
    for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
        if tail.len() == lines {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    if tail.is_empty() {
        return "  (log is empty)".to_string();
    }
    tail.into_iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Resident memory of a process in bytes, from /proc.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether a process with this pid exists (zombies included).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path, name: &str, script: &str) -> Spec {
        Spec {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            log: dir.join(format!("{name}.log")),
            grace: Duration::from_millis(300),
        }
    }

    #[test]
    fn a_crashed_component_is_reported_with_its_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut c =
            Component::start(sleeper(dir.path(), "crasher", "echo boom-line; exit 3")).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("crasher exited"), "{err}");
        assert!(err.contains("boom-line"), "{err}");
        assert!(err.contains("3"), "{err}");
    }

    #[test]
    fn a_component_that_ignores_sigterm_is_killed_after_its_grace() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Component::start(sleeper(
            dir.path(),
            "stubborn",
            "trap '' TERM; while true; do sleep 0.05; done",
        ))
        .unwrap();
        let pid = c.pid();
        std::thread::sleep(Duration::from_millis(100));
        c.stop();
        assert!(!process_exists(pid), "pid {pid} is still there");
    }

    #[test]
    fn components_stop_in_reverse_order() {
        let dir = tempfile::tempdir().unwrap();
        let order = dir.path().join("order");
        let mut all = Components::default();
        for name in ["first", "second", "third"] {
            let script = format!(
                "trap 'echo {name} >> {}; exit 0' TERM; while true; do sleep 0.05; done",
                order.display()
            );
            all.push(Component::start(sleeper(dir.path(), name, &script)).unwrap());
        }
        std::thread::sleep(Duration::from_millis(200));
        let pids = all.pids();
        all.stop_all();
        let stopped = std::fs::read_to_string(&order).unwrap();
        assert_eq!(
            stopped.lines().collect::<Vec<_>>(),
            ["third", "second", "first"]
        );
        for (_, pid) in pids {
            assert!(!process_exists(pid));
        }
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(
            &path,
            (1..=50).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        let tail = log_tail(&path, 3);
        assert_eq!(tail, "  | line 48\n  | line 49\n  | line 50");
    }
}
