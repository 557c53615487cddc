//! What a person sees (issue 23): the transfer bar on a real pseudo-terminal (tmux), silence
//! when stderr is not a terminal, `-v` timings, the recap unchanged by the bar, and the
//! generated shell completions and man page loaded by the real bash and man.
//!
//! The mid-run capture is not left to timing: one destination is held by SIGSTOP (its sshd
//! and sessions, by PID, through the fleet), so the run cannot end while the test looks at the
//! bar; it is resumed afterwards and the run must then finish cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fleet::Fleet;
use crate::support::{Sshfleet, sshfleet_bin};

/// A private tmux server (its own socket) running one command on a pseudo-terminal; the server
/// is killed by PID when dropped.
struct Tmux {
    socket: String,
    server_pid: Option<i32>,
}

impl Tmux {
    /// Start `script` (run by `sh`) in a detached 200x30 session on a server of its own.
    fn start(script: &Path, name: &str) -> Tmux {
        let socket = format!("sshfleet-ux-{}-{name}", std::process::id());
        let mut t = Tmux {
            socket,
            server_pid: None,
        };
        let ok = t
            .tmux()
            .args([
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "30",
                "-s",
                "ux",
                "sh",
            ])
            .arg(script)
            .status()
            .expect("tmux (install it with scripts/setup.sh)");
        assert!(ok.success(), "tmux new-session failed");
        let out = t
            .tmux()
            .args(["display-message", "-p", "-t", "ux", "#{pid}"])
            .output()
            .unwrap();
        t.server_pid = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// The visible screen, as text (no escape sequences).
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "ux"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Some(pid) = self.server_pid {
            // SAFETY: kill(2) on the tmux server this test started; its panes get SIGHUP.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sh_quote(p: impl AsRef<std::ffi::OsStr>) -> String {
    format!("'{}'", p.as_ref().to_string_lossy().replace('\'', r"'\''"))
}

/// A script running sshfleet on `fleet` with `args` (stdout to `dir/NAME.out`, exit code to
/// `dir/NAME.exit`), stderr left on the terminal. Returns (script, stdout file, exit file).
fn script(fleet: &Fleet, dir: &Path, name: &str, args: &str) -> (PathBuf, PathBuf, PathBuf) {
    let out = dir.join(format!("{name}.out"));
    let exit = dir.join(format!("{name}.exit"));
    let script = dir.join(format!("{name}.sh"));
    let cmd = [
        sh_quote(sshfleet_bin()),
        "-i".into(),
        sh_quote(fleet.inventory()),
        "--private-key".into(),
        sh_quote(fleet.client_key()),
        "--known-hosts".into(),
        sh_quote(fleet.known_hosts()),
        args.into(),
    ]
    .join(" ");
    std::fs::write(
        &script,
        format!(
            "unset SSH_AUTH_SOCK ANSIBLE_INVENTORY\n{cmd} > {o}\necho $? > {e}.tmp && mv {e}.tmp {e}\nsleep 60\n",
            o = sh_quote(&out),
            e = sh_quote(&exit)
        ),
    )
    .unwrap();
    (script, out, exit)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("gave up waiting for {what} after {limit:?}");
    false
}

/// The `PLAY RECAP` block of a text run.
fn recap(stdout: &str) -> String {
    let at = stdout
        .find("PLAY RECAP")
        .unwrap_or_else(|| panic!("no recap in:\n{stdout}"));
    stdout[at..].trim_end().to_string()
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Bytes done, with a unit, of the first `DONE/TOTAL RATE/s` on the screen.
fn bar_bytes_and_rate(screen: &str) -> Option<(f64, String, String)> {
    let re = regex::Regex::new(
        r"(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB)/(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB) +(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB)/s",
    )
    .unwrap();
    let c = re.captures(screen)?;
    Some((
        c[1].parse().ok()?,
        format!("{} {}/{} {}", &c[1], &c[2], &c[3], &c[4]),
        format!("{} {}/s", &c[5], &c[6]),
    ))
}

#[test]
fn transfer_bar_on_a_terminal_silence_elsewhere_and_the_same_recap() {
    let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let big = noise(24 << 20, 23);
    let src = fleet.host(0).local_path("/srv/ux/big.bin").unwrap();
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::write(&src, &big).unwrap();

    // 1. stderr is a pipe: no bar, no control character anywhere; -v adds per-host timings.
    let piped = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "-v",
            "-b",
            "replicate",
            "--from",
            "host01",
            "/srv/ux/big.bin",
        ])
        .args(["--dest", "/srv/ux/piped.bin"])
        .run();
    piped.success();
    assert!(
        !has_control_chars(&piped.stdout) && !has_control_chars(&piped.stderr),
        "control characters without a terminal:\n{piped:?}"
    );
    for h in ["host02", "host03"] {
        assert!(
            piped.stdout.contains(&format!("[{h}] timing: connect ")),
            "{piped}"
        );
    }

    // 2. On a terminal, with host03 frozen: the bar shows bytes and a rate mid-run.
    fleet.pause_host(2);
    let (script_path, out, exit) = script(
        &fleet,
        dir.path(),
        "replicate",
        "-T 90 -b replicate --from host01 /srv/ux/big.bin",
    );
    let tmux = Tmux::start(&script_path, "replicate");
    let mut seen = None;
    let found = wait_for("the bar to show bytes", Duration::from_secs(60), || {
        let s = tmux.screen();
        match bar_bytes_and_rate(&s) {
            Some((done, _, _)) if done > 0.0 => {
                seen = Some(s);
                true
            }
            _ => false,
        }
    });
    let still_running = !exit.exists();
    fleet.resume_host(2);
    let screen = seen.unwrap_or_else(|| tmux.screen());
    assert!(found, "no bytes/rate on the terminal:\n{screen}");
    assert!(still_running, "the run ended while host03 was stopped");
    let (_, bytes, rate) = bar_bytes_and_rate(&screen).unwrap();
    assert!(screen.contains("ETA"), "{screen}");
    assert!(screen.contains("/2 hosts"), "{screen}");
    eprintln!("mid-run: {bytes} at {rate}\n{}", screen.trim_end());

    assert!(
        wait_for("the run to end", Duration::from_secs(120), || exit.exists()),
        "still running after host03 resumed:\n{}",
        tmux.screen()
    );
    let code = std::fs::read_to_string(&exit).unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(code.trim(), "0", "{stdout}\n{}", tmux.screen());
    for i in 1..3 {
        let got = std::fs::read(fleet.host(i).local_path("/srv/ux/big.bin").unwrap()).unwrap();
        assert!(got == big, "host0{} got different bytes", i + 1);
    }
    // The bar never reaches stdout, and the recap is the one without a terminal.
    assert!(!has_control_chars(&stdout), "{stdout:?}");
    assert_eq!(recap(&stdout), recap(&piped.stdout));
    drop(tmux);

    // 3. A rotation shows hosts per phase; host03 frozen again so the moment stays.
    fleet.pause_host(2);
    let key = dir.path().join("backup_new");
    let (script_path, _out, exit) = script(
        &fleet,
        dir.path(),
        "rotate",
        &format!(
            "-T 90 -b keys rotate --user backup --generate --new-key {}",
            sh_quote(&key)
        ),
    );
    let tmux = Tmux::start(&script_path, "rotate");
    let mut screen = String::new();
    let found = wait_for("hosts per phase", Duration::from_secs(60), || {
        screen = tmux.screen();
        screen.contains("2/3 hosts · added 2 · verified 2 · set 2")
    });
    let still_running = !exit.exists();
    fleet.resume_host(2);
    assert!(found, "no phases on the terminal:\n{screen}");
    assert!(still_running, "the rotation ended while host03 was stopped");
    assert!(
        wait_for("the rotation to end", Duration::from_secs(120), || exit
            .exists()),
        "{}",
        tmux.screen()
    );
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "0");
    drop(tmux);

    // 4. --json on a terminal: not one byte of bar, even while a host holds the run up.
    fleet.pause_host(2);
    let (script_path, out, exit) = script(
        &fleet,
        dir.path(),
        "json",
        "-T 90 --json -b replicate --from host01 /srv/ux/big.bin --dest /srv/ux/json.bin",
    );
    let go = dir.path().join("go");
    let raw = dir.path().join("json.raw");
    let gated = format!(
        "while [ ! -e {g} ]; do sleep 0.1; done\n{}",
        std::fs::read_to_string(&script_path).unwrap(),
        g = sh_quote(&go)
    );
    std::fs::write(&script_path, gated).unwrap();
    let tmux = Tmux::start(&script_path, "json");
    let ok = tmux
        .tmux()
        .args(["pipe-pane", "-o", "-t", "ux"])
        .arg(format!("cat >> {}", sh_quote(&raw)))
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(&go, "").unwrap();
    let landed = fleet.host(1).local_path("/srv/ux/json.bin").unwrap();
    let done = wait_for("host02 to get its copy", Duration::from_secs(60), || {
        std::fs::read(&landed).is_ok_and(|b| b == big)
    });
    // A moment for any would-be redraw (the bar ticks every 100 ms).
    std::thread::sleep(Duration::from_millis(500));
    let mid = std::fs::read(&raw).unwrap_or_default();
    let still_running = !exit.exists();
    fleet.resume_host(2);
    assert!(
        done && still_running,
        "host02 done: {done}, running: {still_running}"
    );
    assert!(
        !mid.contains(&0x1b) && !String::from_utf8_lossy(&mid).contains("hosts"),
        "--json drew on the terminal: {:?}",
        String::from_utf8_lossy(&mid)
    );
    assert!(
        wait_for("the json run to end", Duration::from_secs(120), || exit
            .exists()),
        "{}",
        tmux.screen()
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("one JSON document");
    assert_eq!(doc["hosts"]["host03"]["status"], "changed", "{doc}");
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = Sshfleet::new().args(["completions", shell]).run();
        out.success();
        assert!(out.stdout.contains("replicate"), "{shell}: {out}");
        write_file(dir.path(), &format!("sshfleet.{shell}"), &out.stdout);
    }
    // bash: source it, then ask bash what completes `sshfleet`, and complete a subcommand.
    let script = format!(
        "source {f}\ncomplete -p sshfleet\nCOMP_WORDS=(sshfleet rep); COMP_CWORD=1; COMP_LINE='sshfleet rep'; COMP_POINT=${{#COMP_LINE}}\n_sshfleet sshfleet rep sshfleet\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        f = sh_quote(dir.path().join("sshfleet.bash"))
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("complete ") && l.ends_with("-F _sshfleet sshfleet")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "replicate"),
        "`sshfleet rep<TAB>` does not offer replicate:\n{stdout}"
    );

    // man: one page on stdout, every page with --dir; both render with `man -l`.
    let page = Sshfleet::new().args(["man"]).run();
    page.success();
    let top = write_file(dir.path(), "sshfleet.1", &page.stdout);
    let pages = dir.path().join("man1");
    let wrote = Sshfleet::new().args(["man", "--dir"]).arg(&pages).run();
    wrote.success();
    for (file, must) in [
        (top, "replicate"),
        (pages.join("sshfleet-replicate.1"), "--from"),
        (pages.join("sshfleet-keys-rotate.1"), "--new-key"),
    ] {
        let out = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {}: {text}", file.display());
        assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
        assert!(
            text.contains(must),
            "{} lacks {must}:\n{text}",
            file.display()
        );
        // The examples, one command per line as written.
        assert!(text.contains("EXAMPLES"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim().starts_with("sshfleet -i hosts.ini")),
            "{text}"
        );
    }
}
