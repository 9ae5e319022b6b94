//! The summary of an import: one line per Istio document (and per document whose Istio
//! labels or annotations changed) with what it became, then every note, grouped by document.

use super::Row;

/// The summary as text: a table, then the notes.
pub fn table(rows: &[Row]) -> String {
    let status = |r: &Row| match (r.converted.is_empty(), r.notes.is_empty()) {
        (true, _) => "not converted",
        (false, true) => "converted",
        (false, false) => "partly",
    };
    let width = rows
        .iter()
        .map(|r| r.source.len())
        .chain([4])
        .max()
        .unwrap_or(4)
        + 2;
    let mut out = format!(
        "{:<width$}{:<15}{:<6}CONVERTED TO\n",
        "ISTIO", "STATUS", "NOTES"
    );
    for r in rows {
        let first = r.converted.first().map_or("-", String::as_str);
        out += &format!(
            "{:<width$}{:<15}{:<6}{first}\n",
            r.source,
            status(r),
            r.notes.len()
        );
        for more in r.converted.iter().skip(1) {
            out += &format!("{:<width$}{more}\n", "", width = width + 21);
        }
    }
    let noted: Vec<&Row> = rows.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        out += "\nNotes (also written as `# weft import:` comments in the output):\n";
        for r in noted {
            let at = if r.location.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.location)
            };
            out += &format!("{}{at}\n", r.source);
            for n in &r.notes {
                out += &format!("  - {n}\n");
            }
        }
    }
    let counts = |s: &str| rows.iter().filter(|r| status(r) == s).count();
    out += &format!(
        "\n{} converted, {} partly, {} not converted\n",
        counts("converted"),
        counts("partly"),
        counts("not converted")
    );
    out
}
