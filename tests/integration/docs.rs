//! The README and docs/ as a reader follows them: the quick start's and the suite page's commands
//! run as written (with the stand-in application of examples/quickstart), every grpcurl command
//! of the API walk-through, the metrics and the errors pages runs against a real server, and
//! every link between the pages leads to a page and a heading that exist.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::harness::Server;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `assay ...` command lines of the first bash block after `marker` in a page.
fn commands_after(page: &str, marker: &str) -> Vec<Vec<String>> {
    let text = read(page);
    let from = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {page}"));
    let block = text[from..]
        .split("```bash\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("a bash block after {marker:?} in {page}"));
    block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| line.contains("assay "))
        .map(|line| {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let at = words.iter().position(|w| w.ends_with("assay")).unwrap();
            words[at + 1..].to_vec()
        })
        .collect()
}

/// The example application, started as the quick start starts it; killed when dropped.
struct App {
    _process: tokio::process::Child,
}

impl App {
    async fn start() -> App {
        let child = tokio::process::Command::new("python3")
            .arg(repo().join("examples/quickstart/app.py"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the example application");
        // It listens on its own port; wait until it accepts.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect("127.0.0.1:8765")
                .await
                .is_ok()
            {
                return App { _process: child };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the example application did not start on 127.0.0.1:8765");
    }
}

async fn run(dir: &Path, server: Option<&Server>, args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("ASSAY_SERVER")
        .env("ASSAY_LOG", "warn");
    if let Some(server) = server {
        command.env("ASSAY_SERVER", server.url());
    }
    command.output().await.expect("run assay")
}

#[tokio::test]
async fn the_quick_start_and_the_suite_page_run_as_written() {
    let _app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("examples/quickstart");
    std::fs::create_dir_all(&examples).unwrap();
    for file in ["suite.yaml", "app.py"] {
        std::fs::copy(
            repo().join("examples/quickstart").join(file),
            examples.join(file),
        )
        .unwrap();
    }

    // README: `assay eval -f examples/quickstart/suite.yaml --report report.xml`, no server.
    assert!(read("README.md").contains("```bash\nscripts/quickstart\n```"));
    let eval = commands_after("README.md", "Milan), then");
    assert_eq!(eval.len(), 1, "{eval:?}");
    let output = run(dir.path(), None, &eval[0]).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "the quick start's documented exit code: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert_eq!(report.matches("<testcase").count(), 3);
    assert_eq!(report.matches("<failure").count(), 1, "Italy");

    // docs/cli.md's suite commands, in a folder holding `suite.yaml`, on a server.
    let server = Server::start().await;
    std::fs::copy(examples.join("suite.yaml"), dir.path().join("suite.yaml")).unwrap();
    let suite = commands_after("docs/cli.md", "## Suites");
    assert_eq!(suite.len(), 2, "{suite:?}");
    let apply = run(dir.path(), Some(&server), &suite[0]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let eval = run(dir.path(), None, &suite[1]).await;
    assert_eq!(
        eval.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_link_between_the_pages_leads_somewhere() {
    let mut pages = vec!["README.md".to_string()];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        pages.push(format!("docs/{name}"));
    }
    let link = regex::Regex::new(r"\]\(([^)\s]*?)(?:#([\w-]+))?\)").unwrap();
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        let folder = Path::new(page).parent().unwrap();
        for found in link.captures_iter(&text) {
            let target = &found[1];
            if target.starts_with("http") {
                continue;
            }
            let file = if target.is_empty() {
                repo().join(page)
            } else {
                repo().join(folder).join(target)
            };
            if !file.exists() {
                broken.push(format!("{page}: {}", &found[0]));
                continue;
            }
            if let Some(wanted) = found.get(2)
                && !anchors(&std::fs::read_to_string(&file).unwrap())
                    .contains(&wanted.as_str().to_string())
            {
                broken.push(format!("{page}: {}", &found[0]));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        read("README.md").lines().count() <= 220,
        "the README is a front door, not the manual"
    );
}

/// The `sh` blocks of a page that call grpcurl, in order, as bash: `ASSAY=...` lines are left
/// out (the caller sets the server) and so is starting the pages' example scorers.
fn grpcurl_blocks(page: &str) -> String {
    let text = read(page);
    let mut script = String::new();
    for block in text.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        if !block.contains("grpcurl") {
            continue;
        }
        for line in block.lines() {
            if line.starts_with("ASSAY=") || line.starts_with("python3 ") {
                continue;
            }
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

/// Every grpcurl command of the API walk-through (and of the metrics and errors pages) runs, in
/// the pages' order, against a real server: each names an RPC that exists with a request the
/// server's descriptors accept (grpcurl exits 1 for an unknown method or field, or JSON it
/// cannot read, and 64 + the code for an RPC's own error, which the pages show for some on
/// purpose; the application they call is not running, so runs end with errored results).
#[tokio::test]
async fn every_grpcurl_command_of_the_docs_names_an_rpc_and_a_request_the_server_takes() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    let address = server.url().trim_start_matches("http://").to_string();
    for page in ["docs/api.md", "docs/metrics.md", "docs/errors.md"] {
        let commands = grpcurl_blocks(page);
        assert!(commands.matches("grpcurl ").count() > 0, "{page}");
        let script = format!(
            r#"ASSAY={address}
grpcurl() {{
  command "$GRPCURL" -max-time 20 "$@" > /dev/null
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -lt 64 ]; then printf '%s: grpcurl %s (exit %s)\n' "$PAGE" "$*" "$rc" >> "$BROKEN"; fi
  return 0
}}
{commands}"#
        );
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("GRPCURL", crate::e2e::grpcurl_path())
            .env("BROKEN", &broken)
            .env("PAGE", page)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run bash");
        assert!(
            output.status.success(),
            "{page}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let broken = std::fs::read_to_string(&broken).unwrap_or_default();
    assert!(
        broken.is_empty(),
        "commands the server cannot take:\n{broken}"
    );
}
