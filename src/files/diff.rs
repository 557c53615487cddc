//! Before/after diffs of file content for `--diff` / `_ansible_diff`: a line-based unified
//! diff (Myers' algorithm, three lines of context, `\ No newline at end of file` markers) for
//! text, "Binary files differ" for anything else, and the Ansible diff object
//! (`before`/`after`/`*_header`, or `dst_binary`/`src_binary`/`*_larger`) the module returns.

use serde_json::{Map, Value, json};

/// Largest file (bytes) whose content goes into a diff; Ansible's `max_file_size_for_diff`.
pub const MAX_DIFF_BYTES: u64 = 104_448;

/// Edit distance beyond which the diff stops searching for a minimal script and reports the
/// rest as replaced (bounds time and memory on pathological input).
const MAX_EDIT_DISTANCE: usize = 2000;

/// Lines of context around each hunk.
const CONTEXT: usize = 3;

/// Content that is not text: contains a NUL byte or is not valid UTF-8.
pub fn is_binary(data: &[u8]) -> bool {
    data.contains(&0) || std::str::from_utf8(data).is_err()
}

/// One side of a diff as known to the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The file does not exist (before: would be created; after: would be removed).
    Absent,
    /// The content, read because it was small enough.
    Content(Vec<u8>),
    /// Larger than [`MAX_DIFF_BYTES`]; content not read.
    TooLarge(u64),
}

impl Side {
    fn content(&self) -> Option<&[u8]> {
        match self {
            Side::Content(c) => Some(c),
            _ => None,
        }
    }
}

/// A file change for display: `--diff` text and the Ansible `diff` return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub before: Side,
    pub after: Side,
}

impl FileDiff {
    /// Ansible's diff dictionary for this change.
    pub fn to_ansible(&self) -> Value {
        let mut m = Map::new();
        m.insert("before_header".into(), json!(self.path));
        m.insert("after_header".into(), json!(self.path));
        match &self.before {
            Side::TooLarge(_) => {
                m.insert("dst_larger".into(), json!(MAX_DIFF_BYTES));
            }
            Side::Content(c) if is_binary(c) => {
                m.insert("dst_binary".into(), json!(1));
            }
            Side::Content(c) => {
                m.insert("before".into(), json!(String::from_utf8_lossy(c)));
            }
            Side::Absent => {
                m.insert("before".into(), json!(""));
            }
        }
        match &self.after {
            Side::TooLarge(_) => {
                m.insert("src_larger".into(), json!(MAX_DIFF_BYTES));
            }
            Side::Content(c) if is_binary(c) => {
                m.insert("src_binary".into(), json!(1));
            }
            Side::Content(c) => {
                m.insert("after".into(), json!(String::from_utf8_lossy(c)));
            }
            Side::Absent => {
                m.insert("after".into(), json!(""));
            }
        }
        Value::Object(m)
    }

    /// Human-readable diff: a unified diff for text, otherwise a one-line explanation.
    pub fn render(&self) -> String {
        let before_label = match self.before {
            Side::Absent => "/dev/null".to_string(),
            _ => format!("before: {}", self.path),
        };
        let after_label = match self.after {
            Side::Absent => "/dev/null".to_string(),
            _ => format!("after: {}", self.path),
        };
        if let (Side::TooLarge(_), _) | (_, Side::TooLarge(_)) = (&self.before, &self.after) {
            return format!(
                "{}: diff skipped: file larger than {MAX_DIFF_BYTES} bytes\n",
                self.path
            );
        }
        let b = self.before.content().unwrap_or(b"");
        let a = self.after.content().unwrap_or(b"");
        if is_binary(b) || is_binary(a) {
            if b == a {
                return String::new();
            }
            return format!("Binary files {before_label} and {after_label} differ\n");
        }
        unified(
            std::str::from_utf8(b).unwrap_or_default(),
            std::str::from_utf8(a).unwrap_or_default(),
            &before_label,
            &after_label,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    Delete,
    Insert,
}

/// A unified diff of two texts; empty when they are equal.
pub fn unified(before: &str, after: &str, before_label: &str, after_label: &str) -> String {
    let a: Vec<&str> = before.split_inclusive('\n').collect();
    let b: Vec<&str> = after.split_inclusive('\n').collect();
    let script = edit_script(&a, &b);
    if script.iter().all(|(op, _, _)| *op == Op::Equal) {
        return String::new();
    }
    let mut out = format!("--- {before_label}\n+++ {after_label}\n");
    // Indices into `script` of non-equal entries, grouped into hunks.
    let changes: Vec<usize> = script
        .iter()
        .enumerate()
        .filter(|(_, (op, _, _))| *op != Op::Equal)
        .map(|(i, _)| i)
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &c in &changes {
        match groups.last_mut() {
            Some((_, end)) if c <= *end + 2 * CONTEXT + 1 => *end = c,
            _ => groups.push((c, c)),
        }
    }
    for (first, last) in groups {
        let start = first.saturating_sub(CONTEXT);
        let end = (last + CONTEXT + 1).min(script.len());
        let hunk = &script[start..end];
        // Line numbers (0-based) where the hunk starts on each side.
        let (a0, b0) = (hunk[0].1, hunk[0].2);
        let a_len = hunk.iter().filter(|e| e.0 != Op::Insert).count();
        let b_len = hunk.iter().filter(|e| e.0 != Op::Delete).count();
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(a0, a_len),
            range(b0, b_len)
        ));
        for &(op, i, j) in hunk {
            let (prefix, line) = match op {
                Op::Equal => (' ', a[i]),
                Op::Delete => ('-', a[i]),
                Op::Insert => ('+', b[j]),
            };
            out.push(prefix);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// `start,len` in unified-diff notation (1-based; `,1` omitted; empty ranges name the line
/// before).
fn range(start0: usize, len: usize) -> String {
    match len {
        0 => format!("{start0},0"),
        1 => format!("{}", start0 + 1),
        _ => format!("{},{}", start0 + 1, len),
    }
}

/// Edit script as (op, index in a, index in b); for inserts the a-index is the position the
/// insertion happens before (and vice versa), which is what hunk headers need.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<(Op, usize, usize)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let am = &a[prefix..a.len() - suffix];
    let bm = &b[prefix..b.len() - suffix];
    let mut script: Vec<(Op, usize, usize)> = (0..prefix).map(|i| (Op::Equal, i, i)).collect();
    let middle = myers(am, bm).unwrap_or_else(|| {
        let mut v: Vec<(Op, usize, usize)> = (0..am.len()).map(|i| (Op::Delete, i, 0)).collect();
        v.extend((0..bm.len()).map(|j| (Op::Insert, am.len(), j)));
        v
    });
    script.extend(
        middle
            .into_iter()
            .map(|(op, i, j)| (op, i + prefix, j + prefix)),
    );
    let (ae, be) = (a.len() - suffix, b.len() - suffix);
    script.extend((0..suffix).map(|k| (Op::Equal, ae + k, be + k)));
    script
}

/// Myers' O(ND) shortest edit script, or `None` beyond [`MAX_EDIT_DISTANCE`]. Deletions are
/// emitted before insertions within a change, as `diff -u` does.
fn myers(a: &[&str], b: &[&str]) -> Option<Vec<(Op, usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let limit = max.min(MAX_EDIT_DISTANCE);
    // trace[d] holds V for k in -d..=d (index k + d) after step d.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut v = vec![0isize; 2 * limit + 3];
    let off = limit as isize + 1;
    let mut found = None;
    'outer: for d in 0..=limit as isize {
        for k in (-d..=d).step_by(2) {
            let mut x =
                if k == -d || (k != d && v[(off + k - 1) as usize] < v[(off + k + 1) as usize]) {
                    v[(off + k + 1) as usize]
                } else {
                    v[(off + k - 1) as usize] + 1
                };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(off + k) as usize] = x;
            if x >= n && y >= m {
                trace.push(v[(off - d) as usize..=(off + d) as usize].to_vec());
                found = Some(d);
                break 'outer;
            }
        }
        trace.push(v[(off - d) as usize..=(off + d) as usize].to_vec());
    }
    let dmax = found?;
    // Backtrack from (n, m).
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..=dmax).rev() {
        let k = x - y;
        let prev = &trace[(d - 1) as usize];
        let get = |k: isize| prev[(k + d - 1) as usize];
        let prev_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = get(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            ops.push((Op::Equal, x as usize, y as usize));
        }
        if prev_k == k + 1 {
            y -= 1;
            ops.push((Op::Insert, x as usize, y as usize));
        } else {
            x -= 1;
            ops.push((Op::Delete, x as usize, y as usize));
        }
        (x, y) = (prev_x, prev_y);
    }
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        ops.push((Op::Equal, x as usize, y as usize));
    }
    ops.reverse();
    // Within each run of changes, put deletions first.
    let mut out = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        if ops[i].0 == Op::Equal {
            out.push(ops[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < ops.len() && ops[i].0 != Op::Equal {
            i += 1;
        }
        let run = &ops[start..i];
        let a_start = run.iter().map(|e| e.1).min().unwrap_or(0);
        let b_start = run.iter().map(|e| e.2).min().unwrap_or(0);
        let dels: Vec<_> = run.iter().filter(|e| e.0 == Op::Delete).collect();
        let ins: Vec<_> = run.iter().filter(|e| e.0 == Op::Insert).collect();
        out.extend(dels.iter().map(|e| (Op::Delete, e.1, b_start)));
        let a_after = a_start + dels.len();
        out.extend(ins.iter().map(|e| (Op::Insert, a_after, e.2)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(a: &str, b: &str) -> String {
        unified(a, b, "a", "b")
    }

    #[test]
    fn equal_texts_give_no_diff() {
        assert_eq!(u("x\ny\n", "x\ny\n"), "");
        assert_eq!(u("", ""), "");
    }

    #[test]
    fn single_change_with_context() {
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let b = "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n";
        assert_eq!(
            u(a, b),
            "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn create_and_delete_whole_file() {
        assert_eq!(u("", "a\nb\n"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(u("a\n", ""), "--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        assert_eq!(
            u("a\nb", "a\nb\n"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }

    #[test]
    fn distant_changes_make_two_hunks_close_ones_merge() {
        let a: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let edit = |pairs: &[(u32, &str)]| -> String {
            (1..=20u32)
                .map(|i| match pairs.iter().find(|p| p.0 == i) {
                    Some((_, s)) => format!("{s}\n"),
                    None => format!("{i}\n"),
                })
                .collect()
        };
        let b = edit(&[(2, "two"), (19, "nineteen")]);
        let d = u(&a, &b);
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n"), "{d}");
        assert!(d.contains("@@ -16,5 +16,5 @@\n"), "{d}");
        let c = edit(&[(5, "five"), (11, "eleven")]);
        assert_eq!(u(&a, &c).matches("@@ -").count(), 1);
    }

    #[test]
    fn insertions_and_deletions_are_minimal() {
        let d = u("a\nb\nc\nd\n", "a\nc\nd\ne\n");
        assert_eq!(d, "--- a\n+++ b\n@@ -1,4 +1,4 @@\n a\n-b\n c\n d\n+e\n");
        let d = u("x\ny\n", "p\nq\nr\n");
        assert_eq!(d, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n-x\n-y\n+p\n+q\n+r\n");
    }

    #[test]
    fn crlf_lines_compare_by_bytes() {
        let d = u("a\r\nb\r\n", "a\r\nb\n");
        assert!(d.contains("-b\r\n+b\n"), "{d:?}");
    }

    #[test]
    fn applying_the_script_reproduces_after() {
        // Property check over deterministic pseudo-random inputs: the edit script must turn
        // `a` into `b` and only delete/insert where lines really differ.
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..200 {
            let a: Vec<String> = (0..next() % 30)
                .map(|_| format!("{}\n", next() % 5))
                .collect();
            let b: Vec<String> = (0..next() % 30)
                .map(|_| format!("{}\n", next() % 5))
                .collect();
            let ar: Vec<&str> = a.iter().map(String::as_str).collect();
            let br: Vec<&str> = b.iter().map(String::as_str).collect();
            let script = edit_script(&ar, &br);
            let rebuilt: Vec<&str> = script
                .iter()
                .filter(|e| e.0 != Op::Delete)
                .map(|e| if e.0 == Op::Equal { ar[e.1] } else { br[e.2] })
                .collect();
            assert_eq!(rebuilt, br);
            let kept: Vec<&str> = script
                .iter()
                .filter(|e| e.0 != Op::Insert)
                .map(|e| ar[e.1])
                .collect();
            assert_eq!(kept, ar);
            for e in &script {
                if e.0 == Op::Equal {
                    assert_eq!(ar[e.1], br[e.2]);
                }
            }
        }
    }

    #[test]
    fn binary_and_large_sides() {
        let d = FileDiff {
            path: "/p".into(),
            before: Side::Content(vec![0, 1, 2]),
            after: Side::Content(vec![0, 1, 3]),
        };
        assert_eq!(d.render(), "Binary files before: /p and after: /p differ\n");
        assert_eq!(d.to_ansible()["dst_binary"], 1);
        assert_eq!(d.to_ansible()["src_binary"], 1);
        let l = FileDiff {
            path: "/p".into(),
            before: Side::TooLarge(1 << 20),
            after: Side::Content(b"x".to_vec()),
        };
        assert!(l.render().contains("diff skipped"));
        assert_eq!(l.to_ansible()["dst_larger"], MAX_DIFF_BYTES);
        assert!(is_binary(&[0xff, 0xfe]));
        assert!(!is_binary("héllo\r\n".as_bytes()));
    }

    #[test]
    fn new_file_diff_uses_dev_null_and_ansible_fields() {
        let d = FileDiff {
            path: "/etc/x".into(),
            before: Side::Absent,
            after: Side::Content(b"hi\n".to_vec()),
        };
        assert_eq!(
            d.render(),
            "--- /dev/null\n+++ after: /etc/x\n@@ -0,0 +1 @@\n+hi\n"
        );
        let v = d.to_ansible();
        assert_eq!(v["before"], "");
        assert_eq!(v["after"], "hi\n");
        assert_eq!(v["after_header"], "/etc/x");
    }
}
