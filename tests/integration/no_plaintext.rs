//! Nothing stored reveals file names or contents.

use crate::support::*;

#[test]
fn no_object_contains_names_or_contents() {
    for backend in backends() {
        let repo = Repo::new(backend);
        let share = repo.path("governors");
        let names = [
            "minutes-confidential-safeguarding.docx",
            "Pupil Premium Evaluation.xlsx",
            "headteacher-appraisal",
        ];
        let contents = [
            "SAFEGUARDING-REFERRAL-7F3A: pupil at risk, see DSL notes".repeat(200),
            "SALARY-SCALE-UPS3-MARKER 42,000\n".repeat(500),
            "PLAIN-SHORT-MARKER".to_string(),
        ];
        for (n, c) in names.iter().zip(&contents) {
            write(&share.join("board").join(n), c.as_bytes());
        }
        repo.backup(&share, "governors-share");

        let objects = repo.objects();
        assert!(
            objects.iter().any(|(k, _)| k.starts_with("data/")),
            "no packs stored"
        );
        let needles: Vec<&[u8]> = names
            .iter()
            .map(|n| n.as_bytes())
            .chain(contents.iter().map(|c| &c.as_bytes()[..18]))
            .chain([
                &b"governors-share"[..],
                b"board",
                share.to_str().expect("utf8").as_bytes(),
            ])
            .collect();
        for (key, bytes) in &objects {
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == *needle),
                    "{key} contains {:?} in plaintext",
                    String::from_utf8_lossy(needle)
                );
            }
            // Every object but config is an age file.
            if key != "config" {
                assert!(
                    bytes.starts_with(b"age-encryption.org/v1\n"),
                    "{key} is not an age file"
                );
            }
        }
    }
}
