//! What recording costs the node, measured while it runs: the eBPF programs' run time (the
//! kernel's BPF statistics: run time and run count per program, which the recorder turns on
//! for as long as it runs) and the recorder process's CPU time (`getrusage`). Each stats tick
//! takes a [`Sample`]; the difference of two is a [`Cost`], which the periodic log line and the
//! closing line print, and whose counters go into the archive's statistics records.

use std::fmt;
use std::time::{Duration, Instant};

use juno_archive::Counter;

/// One program's cumulative statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramCost {
    /// Program name.
    pub name: &'static str,
    /// Time spent in it, ns, since it was loaded (while statistics were on).
    pub run_ns: u64,
    /// Times it ran.
    pub runs: u64,
}

/// Cumulative readings at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// How long the programs' statistics were on so far (their run times cover this).
    pub measured: Duration,
    /// The recorder process's CPU time (user + system, every thread), ns.
    pub process_ns: u64,
    /// Events the recorder read from the kernel.
    pub events: u64,
    /// Per program.
    pub programs: Vec<ProgramCost>,
}

impl Sample {
    /// Readings now: the process's CPU time from `getrusage`, the rest as given.
    pub fn now(events: u64, programs: Vec<ProgramCost>, measured: Duration) -> Sample {
        Sample {
            at: Instant::now(),
            measured,
            process_ns: process_cpu_ns(),
            events,
            programs,
        }
    }

    /// The statistics-record counters of this sample (cumulative, as the kernel's are).
    pub fn counters(&self) -> Vec<Counter> {
        let mut c = vec![Counter {
            name: "process_cpu_ns".into(),
            cpu: None,
            value: self.process_ns,
        }];
        for p in &self.programs {
            c.push(Counter {
                name: format!("ebpf_run_ns:{}", p.name),
                cpu: None,
                value: p.run_ns,
            });
            c.push(Counter {
                name: format!("ebpf_runs:{}", p.name),
                cpu: None,
                value: p.runs,
            });
        }
        c
    }
}

/// The difference between two samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Time between them.
    pub elapsed: Duration,
    /// Of that, the time the programs' statistics were on: their share of a CPU is their run
    /// time over this (the statistics are sampled, they cost two clock reads a run).
    pub measured: Duration,
    /// Events read.
    pub events: u64,
    /// Process CPU, ns.
    pub process_ns: u64,
    /// Per program with runs: (name, ns, runs).
    pub programs: Vec<(&'static str, u64, u64)>,
}

impl Cost {
    /// From `a` to `b` (`b` later).
    pub fn between(a: &Sample, b: &Sample) -> Cost {
        let programs = b
            .programs
            .iter()
            .filter_map(|p| {
                let before = a.programs.iter().find(|q| q.name == p.name);
                let ns = p.run_ns.saturating_sub(before.map_or(0, |q| q.run_ns));
                let runs = p.runs.saturating_sub(before.map_or(0, |q| q.runs));
                (runs > 0).then_some((p.name, ns, runs))
            })
            .collect();
        Cost {
            elapsed: b.at.saturating_duration_since(a.at),
            measured: b.measured.saturating_sub(a.measured),
            events: b.events.saturating_sub(a.events),
            process_ns: b.process_ns.saturating_sub(a.process_ns),
            programs,
        }
    }

    /// Time in the eBPF programs, ns.
    pub fn ebpf_ns(&self) -> u64 {
        self.programs.iter().map(|p| p.1).sum()
    }

    /// Program runs.
    pub fn ebpf_runs(&self) -> u64 {
        self.programs.iter().map(|p| p.2).sum()
    }
}

fn per(ns: u64, n: u64) -> String {
    if n == 0 {
        return "-".into();
    }
    let v = ns as f64 / n as f64;
    if v >= 1000.0 {
        format!("{:.1} µs", v / 1000.0)
    } else {
        format!("{v:.0} ns")
    }
}

fn share(ns: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{:.2}% of a CPU", ns as f64 / (secs * 1e9) * 100.0)
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let measured = self.measured.as_secs_f64();
        write!(
            f,
            "{} events in {:.0} s; eBPF {} ({} a run",
            self.events,
            secs,
            share(self.ebpf_ns(), measured),
            per(self.ebpf_ns(), self.ebpf_runs()),
        )?;
        if measured + 0.5 < secs {
            write!(f, ", measured over {measured:.0} s")?;
        }
        for (name, ns, runs) in &self.programs {
            write!(f, "; {name} {} × {runs}", per(*ns, *runs))?;
        }
        write!(
            f,
            "); recorder process {} ({} an event)",
            share(self.process_ns, secs),
            per(self.process_ns, self.events)
        )
    }
}

/// This process's CPU time so far (user + system, all threads), ns.
pub fn process_cpu_ns() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                u64::try_from(tv.tv_sec()).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(tv.tv_usec()).unwrap_or(0) * 1000
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        at: Instant,
        measured: u64,
        process_ns: u64,
        events: u64,
        progs: &[(&'static str, u64, u64)],
    ) -> Sample {
        Sample {
            at,
            measured: Duration::from_secs(measured),
            process_ns,
            events,
            programs: progs
                .iter()
                .map(|&(name, run_ns, runs)| ProgramCost { name, run_ns, runs })
                .collect(),
        }
    }

    #[test]
    fn cost_between_samples_and_its_line() {
        let t0 = Instant::now();
        let a = sample(
            t0,
            0,
            1_000_000,
            10,
            &[("tc_egress", 1_000, 10), ("sock_send_length", 0, 0)],
        );
        let b = sample(
            t0 + Duration::from_secs(10),
            10,
            51_000_000,
            100_010,
            &[
                ("tc_egress", 30_001_000, 100_010),
                ("sock_send_length", 2_000_000, 1_000),
                ("idle", 5, 0),
            ],
        );
        let c = Cost::between(&a, &b);
        assert_eq!(c.events, 100_000);
        assert_eq!(c.process_ns, 50_000_000);
        assert_eq!(
            c.programs,
            vec![
                ("tc_egress", 30_000_000, 100_000),
                ("sock_send_length", 2_000_000, 1_000)
            ]
        );
        assert_eq!(c.ebpf_ns(), 32_000_000);
        assert_eq!(
            c.to_string(),
            "100000 events in 10 s; eBPF 0.32% of a CPU (317 ns a run; tc_egress 300 ns × 100000; \
             sock_send_length 2.0 µs × 1000); recorder process 0.50% of a CPU (500 ns an event)"
        );
        // Counters restart (a reloaded program) never make a negative cost.
        let c = Cost::between(&b, &a);
        assert_eq!((c.events, c.process_ns, c.ebpf_ns()), (0, 0, 0));
        // Statistics on for 2 s of the 10: the programs' share is over those 2 s.
        let mut b2 = b.clone();
        b2.measured = a.measured + Duration::from_secs(2);
        let c = Cost::between(&a, &b2);
        assert!(
            c.to_string().starts_with(
                "100000 events in 10 s; eBPF 1.60% of a CPU (317 ns a run, measured over 2 s;"
            ),
            "{c}"
        );
    }

    #[test]
    fn counters_name_each_program() {
        let s = sample(Instant::now(), 0, 7, 0, &[("tc_ingress", 3, 2)]);
        let names: Vec<(String, u64)> = s
            .counters()
            .into_iter()
            .map(|c| (c.name, c.value))
            .collect();
        assert_eq!(
            names,
            vec![
                ("process_cpu_ns".into(), 7),
                ("ebpf_run_ns:tc_ingress".into(), 3),
                ("ebpf_runs:tc_ingress".into(), 2)
            ]
        );
        assert!(process_cpu_ns() > 0, "this test process has used some CPU");
    }
}
