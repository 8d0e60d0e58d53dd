//! A schedule's verification job: every target of the schedule verified (and optionally
//! repaired) with [`crate::ops::verify`], each record kept in the state directory.

use crate::config::{Config, ScheduleSpec};
use crate::error::Result;
use crate::ops::verify::{Read, VerifyOptions, compare, verify_target};
use crate::store::records::VerifyRecord;
use crate::store::repo::Repository;
use crate::store::state::StateDir;
use chrono::Utc;

/// Verifies (and optionally repairs) every target of a schedule; one record per target, each
/// also appended to the state directory.
pub async fn verify_schedule(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    options: &VerifyOptions,
) -> Result<Vec<VerifyRecord>> {
    let unlock = config.schedule_key(schedule)?;
    let now = Utc::now();
    // Every target that answers and holds the repository.
    let mut repos: Vec<(String, std::result::Result<Repository, String>)> = Vec::new();
    for (name, target) in crate::config::targets::open_schedule_targets(config, schedule).await {
        let repo = match target {
            Ok(t) => Repository::open(t, &unlock)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        repos.push((name, repo));
    }
    let healthy: Vec<(&str, &Repository)> = repos
        .iter()
        .filter_map(|(n, r)| r.as_ref().ok().map(|r| (n.as_str(), r)))
        .collect();
    let compared = compare(&healthy).await?;

    let runs_per_cycle = match options.read {
        Read::Rotating(p) => (100.0 / p.clamp(0.01, 100.0)).ceil() as u32,
        _ => 1,
    };
    let mut records = Vec::new();
    for (name, repo) in &repos {
        let started = Utc::now();
        let mut record = VerifyRecord {
            schedule: schedule.name.clone(),
            target: name.clone(),
            started,
            finished: started,
            structure_checked: false,
            packs_read: 0,
            bytes_read: 0,
            packs_total: 0,
            bytes_total: 0,
            coverage_30d: 0.0,
            coverage_90d: 0.0,
            last_complete_read: None,
            compared: 0,
            findings: Vec::new(),
            result: crate::store::records::CheckOutcome::Error,
            error: String::new(),
        };
        let repo = match repo {
            Ok(r) => r,
            Err(e) => {
                record.error = e.clone();
                record.finished = Utc::now();
                state.append_verify(&record)?;
                records.push(record);
                continue;
            }
        };
        match verify_target(
            repo,
            &healthy,
            compared.get(name.as_str()),
            state,
            options,
            runs_per_cycle,
            now,
            &mut record,
        )
        .await
        {
            Ok(()) => {}
            Err(e) => {
                record.result = crate::store::records::CheckOutcome::Error;
                record.error = e.to_string();
            }
        }
        record.finished = Utc::now();
        if !options.dry_run {
            state.append_verify(&record)?;
        }
        records.push(record);
    }
    if !options.dry_run {
        for why in crate::schedule::beacon::write_now(config, schedule, state).await {
            crate::schedule::backup_job::warn(&schedule.name, &why);
        }
    }
    Ok(records)
}
