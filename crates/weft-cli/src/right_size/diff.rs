//! A unified diff of two texts (`diff -u` style, three lines of context), to show what
//! `--apply` would write before it writes it. Lines are matched by a longest common
//! subsequence, which is plenty for config files.

/// The unified diff from `old` to `new` of the file `name`; empty when they are equal.
pub fn unified(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = script(&a, &b);
    if ops.iter().all(|op| matches!(op, Op::Same(..))) {
        return String::new();
    }
    let mut out = format!("--- {name}\n+++ {name} (right-sized)\n");
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len())
        .filter(|i| !matches!(ops[*i], Op::Same(..)))
        .collect();
    // Group changes closer than twice the context into one hunk.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        match hunks.last_mut() {
            Some((_, end)) if i <= *end + 2 * CONTEXT => *end = i,
            _ => hunks.push((i, i)),
        }
    }
    for (first, last) in hunks {
        let start = first.saturating_sub(CONTEXT);
        let end = (last + CONTEXT + 1).min(ops.len());
        let (a0, b0) = position(&ops[..start]);
        let (na, nb) = position(&ops[start..end]);
        out += &format!("@@ -{} +{} @@\n", range(a0, na), range(b0, nb));
        for op in &ops[start..end] {
            match op {
                Op::Same(l) => out += &format!(" {l}\n"),
                Op::Del(l) => out += &format!("-{l}\n"),
                Op::Add(l) => out += &format!("+{l}\n"),
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

/// Lines of the old and the new text that `ops` cover.
fn position(ops: &[Op<'_>]) -> (usize, usize) {
    ops.iter().fold((0, 0), |(a, b), op| match op {
        Op::Same(_) => (a + 1, b + 1),
        Op::Del(_) => (a + 1, b),
        Op::Add(_) => (a, b + 1),
    })
}

/// `start,count` as diff writes it (1-based; an empty range names the line before it).
fn range(before: usize, count: usize) -> String {
    if count == 0 {
        format!("{before},0")
    } else {
        format!("{},{count}", before + 1)
    }
}

/// The edit script from `a` to `b`: common prefix and suffix kept, the middle by LCS.
fn script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = (a[pre..].iter().rev())
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<Op> = a[..pre].iter().map(|l| Op::Same(l)).collect();
    // lcs[i][j]: the LCS length of ma[i..] and mb[j..].
    let mut lcs = vec![vec![0u32; mb.len() + 1]; ma.len() + 1];
    for i in (0..ma.len()).rev() {
        for j in (0..mb.len()).rev() {
            lcs[i][j] = if ma[i] == mb[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < ma.len() || j < mb.len() {
        if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
            ops.push(Op::Same(ma[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < ma.len() && (j == mb.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Del(ma[i]));
            i += 1;
        } else {
            ops.push(Op::Add(mb[j]));
            j += 1;
        }
    }
    ops.extend(a[a.len() - suf..].iter().map(|l| Op::Same(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("f", "a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn a_change_is_shown_with_three_lines_of_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\n5x\n6\n7\n8\n9\n";
        assert_eq!(
            unified("f.yaml", old, new),
            "--- f.yaml\n+++ f.yaml (right-sized)\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+5x\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn insertions_and_distant_changes_make_separate_hunks() {
        let lines: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
        let old = lines.join("\n") + "\n";
        let mut changed = lines.clone();
        changed.remove(17);
        changed.splice(2..2, ["new-a".to_string(), "new-b".to_string()]);
        let new = changed.join("\n") + "\n";
        let d = unified("f", &old, &new);
        assert!(
            d.contains("@@ -1,5 +1,7 @@\n 1\n 2\n+new-a\n+new-b\n 3\n"),
            "{d}"
        );
        assert!(
            d.contains("@@ -15,6 +17,5 @@\n 15\n 16\n 17\n-18\n 19\n 20\n"),
            "{d}"
        );
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        let d = unified("f", "a\n", "z\na\n");
        assert!(d.ends_with("@@ -1,1 +1,2 @@\n+z\n a\n"), "{d}");
        // Everything removed: the old range, and an empty new one before line 1.
        let d = unified("f", "a\n", "");
        assert!(d.ends_with("@@ -1,1 +0,0 @@\n-a\n"), "{d}");
    }
}
