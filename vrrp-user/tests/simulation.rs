//! keepalived's scenarios on a virtual segment: the daemon's own controller
//! and engines, N nodes, a virtual clock (no root, no sockets). Each
//! scenario asserts the exact sequence of states and the time of each
//! transition.

use std::time::Duration;

use proptest::prelude::*;
use xvrrpd::{
    daemon::{
        control::Event,
        sim::{Sim, EPOCH},
    },
    engine::{timers, Reason, State},
    packet::Version,
    time::Mono,
    track::{Status, TrackerId},
};

const SECOND: Duration = Duration::from_secs(1);
/// The sim's default one-way delay.
const DELAY: Duration = Duration::from_micros(100);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A VRRPv2 instance block with `extra` lines.
fn instance(name: &str, interface: &str, vrid: u8, priority: u8, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n interface {interface}\n virtual_router_id {vrid}\n \
         priority {priority}\n advert_int 1\n{extra}\n virtual_ipaddress {{\n 192.0.2.{vrid}\n }}\n}}\n"
    )
}

fn mdi(priority: u8) -> Duration {
    timers::master_down_interval(Version::V2, priority, SECOND, 3)
}

fn skew(priority: u8) -> Duration {
    timers::skew_time(Version::V2, priority, SECOND)
}

fn t(d: Duration) -> Mono {
    EPOCH + d
}

/// Two nodes with one instance VI_1 each, started at 0.
fn pair(pa: u8, pb: u8, extra_a: &str, extra_b: &str) -> Sim {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &instance("VI_1", "eth0", 51, pa, extra_a), "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, pb, extra_b), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim
}

#[test]
fn election_by_priority() {
    let mut sim = pair(200, 100, "", "");
    sim.run_for(secs(10.0));
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![(EPOCH, State::Backup), (t(mdi(200)), State::Master)]
    );
    assert_eq!(sim.nodes[1].timeline(0), vec![(EPOCH, State::Backup)]);
    assert_eq!(sim.nodes[0].changes[1].reason, Reason::MasterDownTimer);
    assert_eq!(sim.vip_holders("VI_1"), vec![0]);
    // The master advertises once a second from its takeover.
    let sent: Vec<Mono> = sim.nodes[0].sent.iter().map(|s| s.0).collect();
    assert_eq!(sent[0], t(mdi(200)));
    assert_eq!(sent[1], t(mdi(200) + SECOND));
}

#[test]
fn election_by_address_on_equal_priority() {
    let mut sim = pair(100, 100, "", "");
    sim.run_for(secs(10.0));
    // Both time out together; each hears the other's first advert, and the
    // lower address yields.
    let both = t(mdi(100));
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (both, State::Master),
            (both + DELAY, State::Backup)
        ]
    );
    assert_eq!(
        sim.nodes[0].changes[2].reason,
        Reason::EqualPriorityHigherAddress
    );
    assert_eq!(
        sim.nodes[1].timeline(0),
        vec![(EPOCH, State::Backup), (both, State::Master)]
    );
    assert_eq!(sim.masters("VI_1"), vec![1]);
    assert_eq!(sim.vip_holders("VI_1"), vec![1]);
}

/// B (100) is master alone; A (200) starts at 10 s with `extra`.
fn late_higher(extra_a: &str, until: f64) -> Sim {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &instance("VI_1", "eth0", 51, 200, extra_a), "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, 100, ""), "10.0.0.2");
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.0)));
    sim.start(a, vec![]);
    sim.run_until(t(secs(until)));
    sim
}

#[test]
fn preempt_a_higher_priority_backup_takes_over_after_its_down_interval() {
    let sim = late_higher("", 30.0);
    let start = t(secs(10.0));
    // B's lower-priority adverts do not hold A back.
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![(start, State::Backup), (start + mdi(200), State::Master)]
    );
    assert_eq!(
        sim.nodes[1].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(mdi(100)), State::Master),
            (start + mdi(200) + DELAY, State::Backup)
        ]
    );
    assert_eq!(sim.nodes[1].changes[2].reason, Reason::HigherPriorityAdvert);
}

#[test]
fn nopreempt_never_takes_over_a_live_master() {
    let sim = late_higher(" state BACKUP\n nopreempt", 60.0);
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![(t(secs(10.0)), State::Backup)]
    );
    assert_eq!(sim.masters("VI_1"), vec![1]);
}

#[test]
fn preempt_delay_holds_back_until_it_has_run_out() {
    let sim = late_higher(" preempt_delay 5", 40.0);
    // The delay starts at the first lower-priority advert A hears; inside it
    // B's adverts reset A's down timer; after it they are ignored.
    let b_adverts: Vec<Mono> = sim.nodes[1].sent.iter().map(|s| s.0 + DELAY).collect();
    let first_heard = *b_adverts.iter().find(|&&a| a >= t(secs(10.0))).unwrap();
    let until = first_heard + secs(5.0);
    let last_reset = *b_adverts.iter().rev().find(|&&a| a < until).unwrap();
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![
            (t(secs(10.0)), State::Backup),
            (last_reset + mdi(200), State::Master)
        ]
    );
    assert_eq!(sim.masters("VI_1"), vec![0]);
}

#[test]
fn a_priority_drop_by_tracker_weight_moves_the_master_after_the_peers_down_interval() {
    let file = "vrrp_track_file f {\n file /run/sim/f\n weight 1\n}\n";
    let a_conf = format!(
        "{file}{}",
        instance("VI_1", "eth0", 51, 200, " track_file {\n f\n }")
    );
    let mut sim = Sim::new();
    let a = sim.add_node("a", &a_conf, "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, 150, ""), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    assert_eq!(sim.masters("VI_1"), vec![a]);
    let drop_at = t(secs(10.5));
    sim.inject(
        drop_at,
        a,
        Event::Tracker {
            tracker: TrackerId::File("f".into()),
            status: Status::Value(-100),
        },
    );
    sim.run_until(t(secs(30.0)));
    // A advertises 100 at once; B ignores the lower priority and waits out
    // its down interval from the last advert at 200.
    let last_at_200 = sim.nodes[a]
        .sent
        .iter()
        .filter(|s| s.2 == 200)
        .map(|s| s.0 + DELAY)
        .max()
        .unwrap();
    assert!(sim.nodes[a].sent.contains(&(drop_at, 0, 100)));
    let takeover = last_at_200 + mdi(150);
    assert_eq!(
        sim.nodes[b].timeline(0),
        vec![(EPOCH, State::Backup), (takeover, State::Master)]
    );
    assert_eq!(
        sim.nodes[a].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(mdi(200)), State::Master),
            (takeover + DELAY, State::Backup)
        ]
    );
}

#[test]
fn fault_releases_at_once_and_recovery_preempts_back() {
    let script = "vrrp_script chk {\n script /bin/true\n weight 0\n}\n";
    let a_conf = format!(
        "{script}{}",
        instance("VI_1", "eth0", 51, 200, " track_script {\n chk\n }")
    );
    let mut sim = Sim::new();
    let a = sim.add_node("a", &a_conf, "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, 100, ""), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    let chk = || TrackerId::Script("chk".into());
    let (fail, back) = (t(secs(10.5)), t(secs(20.5)));
    sim.inject(
        fail,
        a,
        Event::Tracker {
            tracker: chk(),
            status: Status::Up(false),
        },
    );
    sim.inject(
        back,
        a,
        Event::Tracker {
            tracker: chk(),
            status: Status::Up(true),
        },
    );
    sim.run_until(t(secs(40.0)));
    // FAULT: priority 0 on the wire, VIPs gone, the peer takes over after
    // its Skew_Time only.
    assert!(sim.nodes[a].sent.contains(&(fail, 0, 0)));
    let b_takes = fail + DELAY + skew(100);
    assert_eq!(
        sim.nodes[a].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(mdi(200)), State::Master),
            (fail, State::Fault),
            (back, State::Backup),
            (back + mdi(200), State::Master)
        ]
    );
    assert_eq!(
        sim.nodes[b].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (b_takes, State::Master),
            (back + mdi(200) + DELAY, State::Backup)
        ]
    );
    assert_eq!(sim.nodes[b].changes[1].reason, Reason::PriorityZeroReceived);
    assert_eq!(sim.vip_holders("VI_1"), vec![a]);
}

#[test]
fn sigterm_hands_over_within_the_peers_skew_time() {
    let mut sim = pair(200, 100, "", "");
    sim.run_until(t(secs(10.5)));
    sim.stop(0);
    sim.run_until(t(secs(20.0)));
    let stop = t(secs(10.5));
    assert_eq!(
        sim.nodes[0].timeline(0).last(),
        Some(&(stop, State::Stopped))
    );
    assert_eq!(
        sim.nodes[1].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (stop + DELAY + skew(100), State::Master)
        ]
    );
    assert_eq!(sim.vip_holders("VI_1"), vec![1]);
}

#[test]
fn three_nodes_fail_over_in_priority_order() {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &instance("VI_1", "eth0", 51, 250, ""), "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, 200, ""), "10.0.0.2");
    let c = sim.add_node("c", &instance("VI_1", "eth0", 51, 100, ""), "10.0.0.3");
    for n in [a, b, c] {
        sim.start(n, vec![]);
    }
    sim.kill_at(t(secs(10.5)), a);
    sim.kill_at(t(secs(20.5)), b);
    sim.run_until(t(secs(40.0)));
    let last = |n: usize, before: f64| {
        sim.nodes[n]
            .sent
            .iter()
            .map(|s| s.0)
            .filter(|&s| s < t(secs(before)))
            .max()
            .unwrap()
            + DELAY
    };
    let b_takes = last(a, 10.5) + mdi(200);
    let c_takes = last(b, 20.5) + mdi(100);
    assert_eq!(
        sim.nodes[b].timeline(0),
        vec![(EPOCH, State::Backup), (b_takes, State::Master)]
    );
    assert_eq!(
        sim.nodes[c].timeline(0),
        vec![(EPOCH, State::Backup), (c_takes, State::Master)]
    );
    assert_eq!(sim.masters("VI_1"), vec![c]);
    // kill -9 leaves the VIPs where they were: that is what crash clean-up is for.
    assert_eq!(sim.vip_holders("VI_1"), vec![a, b, c]);
}

#[test]
fn partition_gives_a_brief_dual_master_then_exactly_one_after_heal() {
    let mut sim = pair(200, 100, "", "");
    sim.run_until(t(secs(10.5)));
    sim.partition(&[0], &[1]);
    sim.run_until(t(secs(20.5)));
    assert_eq!(sim.masters("VI_1"), vec![0, 1]);
    let last_heard = sim.nodes[0]
        .sent
        .iter()
        .map(|s| s.0)
        .filter(|&s| s < t(secs(10.5)))
        .max()
        .unwrap()
        + DELAY;
    sim.heal();
    sim.run_until(t(secs(30.0)));
    let a_next = sim.nodes[0]
        .sent
        .iter()
        .map(|s| s.0)
        .find(|&s| s >= t(secs(20.5)))
        .unwrap();
    assert_eq!(
        sim.nodes[1].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (last_heard + mdi(100), State::Master),
            (a_next + DELAY, State::Backup)
        ]
    );
    assert_eq!(sim.masters("VI_1"), vec![0]);
    assert_eq!(sim.vip_holders("VI_1"), vec![0]);
}

#[test]
fn a_starved_backup_judges_the_master_by_kernel_arrival_times() {
    let mut sim = pair(200, 100, "", "");
    // B's daemon acts on its timers 2.5 s late (starved); the master is
    // alive, and the kernel's fresh arrival stamps keep B in backup.
    sim.nodes[1].timer_latency = secs(2.5);
    sim.run_for(secs(60.0));
    assert_eq!(sim.nodes[1].timeline(0), vec![(EPOCH, State::Backup)]);
    assert_eq!(sim.masters("VI_1"), vec![0]);
}

/// A node with a sync group G of VI_1 on eth0 and VI_2 on eth1.
fn group_node(priority: u8, track: &str) -> String {
    format!(
        "vrrp_sync_group G {{\n group {{\n VI_1\n VI_2\n }}\n}}\n{}{}",
        instance("VI_1", "eth0", 1, priority, track),
        instance("VI_2", "eth1", 2, priority, "")
    )
}

#[test]
fn sync_group_fault_moves_every_member() {
    let mut sim = Sim::new();
    let a = sim.add_node(
        "a",
        &group_node(200, " track_interface {\n eth9\n }"),
        "10.0.0.1",
    );
    let b = sim.add_node("b", &group_node(100, ""), "10.0.0.2");
    sim.start(
        a,
        vec![(TrackerId::Interface("eth9".into()), Status::Up(true))],
    );
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    assert_eq!(sim.masters("VI_1"), vec![a]);
    assert_eq!(sim.masters("VI_2"), vec![a]);
    let down = t(secs(10.5));
    sim.inject(
        down,
        a,
        Event::Link {
            ifindex: 99,
            name: "eth9".into(),
            up: false,
            removed: false,
        },
    );
    sim.run_until(t(secs(20.0)));
    for i in [0, 1] {
        assert_eq!(
            sim.nodes[a].timeline(i),
            vec![
                (EPOCH, State::Backup),
                (t(mdi(200)), State::Master),
                (down, State::Fault)
            ]
        );
        // B's members time out on their Skew_Time and go master together.
        assert_eq!(
            sim.nodes[b].timeline(i),
            vec![
                (EPOCH, State::Backup),
                (down + DELAY + skew(100), State::Master)
            ]
        );
    }
    use xvrrpd::{daemon::control::NotifyOwner, notify::NotifyState};
    let group_notifies: Vec<NotifyState> = sim.nodes[b]
        .notifies
        .iter()
        .filter(|n| n.1 == NotifyOwner::Group("G".into()))
        .map(|n| n.2)
        .collect();
    assert_eq!(
        group_notifies,
        vec![NotifyState::Backup, NotifyState::Master]
    );
}

#[test]
fn sync_group_member_falling_back_takes_the_group_and_prefers_backup() {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &group_node(200, ""), "10.0.0.1");
    let b = sim.add_node("b", &group_node(100, ""), "10.0.0.2");
    // C runs VI_2 only, at a higher priority, and joins later.
    let c = sim.add_node("c", &instance("VI_2", "eth1", 2, 250, ""), "10.0.0.3");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.0)));
    sim.start(c, vec![]);
    sim.run_until(t(secs(60.0)));
    let c_master = t(secs(10.0)) + mdi(250);
    assert_eq!(sim.masters("VI_2"), vec![c]);
    // A's VI_2 falls back on C's advert and takes VI_1 with it.
    let a_back = c_master + DELAY;
    assert_eq!(
        sim.nodes[a].timeline(1).last(),
        Some(&(a_back, State::Backup))
    );
    assert_eq!(
        sim.nodes[a].timeline(0).last(),
        Some(&(a_back, State::Backup))
    );
    let synced = sim.nodes[a]
        .changes
        .iter()
        .find(|c| c.instance == 0 && c.at == a_back)
        .unwrap();
    assert_eq!(synced.reason, Reason::SyncGroup);
    // Nobody's group can go master: VI_1 has no master anywhere, as with
    // keepalived ("prefer backup state to avoid thrashing").
    assert!(sim.masters("VI_1").is_empty());
    assert!(sim.vip_holders("VI_1").is_empty());
}

#[test]
fn a_lossy_segment_elects_one_master_in_the_end() {
    let mut sim = pair(200, 100, "", "");
    sim.seed(7);
    sim.loss = 0.3;
    sim.run_for(secs(120.0));
    sim.loss = 0.0;
    sim.run_for(secs(10.0));
    assert_eq!(sim.masters("VI_1"), vec![0]);
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Op {
    Partition(usize),
    Heal,
    /// Tracked file value on a node: moves its priority.
    Value(usize, i64),
    Loss(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3).prop_map(Op::Partition),
        Just(Op::Heal),
        ((0usize..3), -120i64..60).prop_map(|(n, v)| Op::Value(n, v)),
        (0u8..60).prop_map(Op::Loss),
    ]
}

/// Start and end of each period in which two nodes were master at once.
fn dual_master_periods(sim: &Sim, end: Mono) -> Vec<(Mono, Mono)> {
    let mut edges: Vec<(Mono, usize, bool)> = Vec::new();
    for (n, node) in sim.nodes.iter().enumerate() {
        for (at, state) in node.timeline(0) {
            edges.push((at, n, state == State::Master));
        }
    }
    edges.sort_by_key(|e| e.0);
    let mut master = vec![false; sim.nodes.len()];
    let mut periods = Vec::new();
    let mut since = None;
    let mut i = 0;
    while i < edges.len() {
        // Apply every edge at the same instant before judging.
        let at = edges[i].0;
        while i < edges.len() && edges[i].0 == at {
            master[edges[i].1] = edges[i].2;
            i += 1;
        }
        let dual = master.iter().filter(|m| **m).count() > 1;
        match (dual, since) {
            (true, None) => since = Some(at),
            (false, Some(s)) => {
                periods.push((s, at));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        periods.push((s, end));
    }
    periods
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever happens before, once the segment heals (no partitions, no
    /// loss) two masters never coexist for longer than Master_Down_Interval.
    #[test]
    fn never_two_masters_long_after_the_segment_heals(
        ops in prop::collection::vec((0u64..60_000, op()), 0..25),
        seed in any::<u64>(),
    ) {
        let file = "vrrp_track_file f {\n file /run/sim/f\n weight 1\n}\n";
        let conf = |p: u8| format!("{file}{}", instance("VI_1", "eth0", 51, p, " track_file {\n f\n }"));
        let mut sim = Sim::new();
        sim.seed(seed);
        let nodes = [
            sim.add_node("a", &conf(200), "10.0.0.1"),
            sim.add_node("b", &conf(150), "10.0.0.2"),
            sim.add_node("c", &conf(100), "10.0.0.3"),
        ];
        for n in nodes {
            sim.start(n, vec![]);
        }
        let mut ops = ops;
        ops.sort_by_key(|o| o.0);
        for (at_ms, op) in ops {
            sim.run_until(t(Duration::from_millis(at_ms)));
            match op {
                Op::Partition(n) => {
                    let others: Vec<usize> = nodes.iter().copied().filter(|&o| o != n).collect();
                    sim.partition(&[n], &others);
                }
                Op::Heal => sim.heal(),
                Op::Value(n, v) => {
                    let now = sim.now;
                    sim.inject(now, n, Event::Tracker {
                        tracker: TrackerId::File("f".into()),
                        status: Status::Value(v),
                    });
                }
                Op::Loss(pct) => sim.loss = f64::from(pct) / 100.0,
            }
        }
        sim.run_until(t(secs(60.0)));
        sim.heal();
        sim.loss = 0.0;
        let healed = sim.now;
        let end = healed + secs(30.0);
        sim.run_until(end);
        // The longest down interval of any priority (1) bounds the wait.
        let bound = mdi(1) + DELAY;
        for (start, stop) in dual_master_periods(&sim, end) {
            prop_assert!(
                stop <= healed + bound,
                "two masters from {start} to {stop}, healed at {healed}"
            );
        }
        prop_assert_eq!(sim.masters("VI_1").len(), 1);
        let holders = sim.vip_holders("VI_1");
        prop_assert_eq!(holders, sim.masters("VI_1"));
    }
}

#[test]
fn master_timers_due_together_are_served_by_one_wake_up() {
    let conf = format!(
        "{}{}",
        instance("VI_1", "eth0", 1, 200, ""),
        instance("VI_2", "eth0", 2, 199, "")
    );
    let mut sim = Sim::new();
    let a = sim.add_node("a", &conf, "10.0.0.1");
    // VI_2 times out 1/256 s after VI_1; with a 5 ms window its adverts go
    // out with VI_1's, never on a wake-up of their own.
    let window = Duration::from_millis(5);
    sim.nodes[a].controller = sim.nodes[a].controller.clone().with_master_window(window);
    sim.start(a, vec![]);
    sim.run_for(secs(10.0));
    let sends = |i: usize| -> Vec<Mono> {
        sim.nodes[a]
            .sent
            .iter()
            .filter(|s| s.1 == i)
            .map(|s| s.0)
            .collect()
    };
    let (first, second) = (sends(0), sends(1));
    assert_eq!(first[0], t(mdi(200)));
    // VI_2 becomes master on its own exact timer (a backup's is never early)...
    assert_eq!(second[0], t(mdi(199)));
    // ...then every periodic advert rides on VI_1's wake-up.
    assert!(second.len() >= 5);
    for s in &second[1..] {
        assert!(
            first.contains(s),
            "VI_2 advert at {s} not batched with VI_1"
        );
    }
}

// ---------------------------------------------------------------------------
// Reload (SIGHUP)

fn two_instances(p1: u8, p2: u8, extra_vips: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority {p1}\n advert_int 1\n \
         virtual_ipaddress {{\n 192.0.2.51\n{extra_vips} }}\n}}\n{}",
        instance("VI_2", "eth0", 52, p2, "")
    )
}

#[test]
fn a_hundred_reloads_of_the_same_file_change_nothing() {
    let conf_a = two_instances(200, 200, "");
    let mut sim = Sim::new();
    let a = sim.add_node("a", &conf_a, "10.0.0.1");
    let b = sim.add_node("b", &two_instances(100, 100, ""), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.0)));
    let before: Vec<usize> = sim.nodes.iter().map(|n| n.changes.len()).collect();
    for k in 0..100 {
        sim.run_until(t(secs(10.0) + Duration::from_millis(137 * k)));
        let diff = sim.reload(a, &conf_a);
        assert!(diff.is_empty());
    }
    sim.run_until(t(secs(30.0)));
    let after: Vec<usize> = sim.nodes.iter().map(|n| n.changes.len()).collect();
    assert_eq!(before, after, "no transition on either node");
    // Not one advert skipped or doubled: exactly one a second, on time.
    for slot in [0, 1] {
        let sent: Vec<Mono> = sim.nodes[a]
            .sent
            .iter()
            .filter(|s| s.1 == slot)
            .map(|s| s.0)
            .collect();
        for pair in sent.windows(2) {
            assert_eq!(pair[1].saturating_since(pair[0]), SECOND, "slot {slot}");
        }
    }
}

#[test]
fn a_reload_applies_priority_vips_and_instances_in_place() {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &two_instances(200, 200, ""), "10.0.0.1");
    let b = sim.add_node("b", &two_instances(100, 100, ""), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    let vi1 = sim.nodes[a].instance("VI_1");

    // A second VIP on the master: no transition, the advert carries both.
    let more_vips = two_instances(200, 200, " 192.0.2.151\n");
    let diff = sim.reload(a, &more_vips);
    assert_eq!(
        diff.names(xvrrpd::daemon::reload::Change::Update),
        vec!["VI_1"]
    );
    sim.run_until(t(secs(15.0)));
    assert_eq!(
        sim.nodes[a].timeline(vi1).len(),
        2,
        "still just BACKUP, MASTER"
    );
    assert_eq!(sim.nodes[a].plans[0].advert.template.addrs.len(), 2);
    assert!(sim.nodes[a].holds_vips(vi1));

    // VI_2 goes: priority 0, VIPs released, the peer takes it at once
    // (Skew_Time); VI_3 comes and starts as BACKUP; VI_1 is untouched.
    let removed_at = sim.now;
    let new_file = format!(
        "{}{}",
        two_instances(200, 200, " 192.0.2.151\n")
            .split("vrrp_instance VI_2")
            .next()
            .unwrap(),
        instance("VI_3", "eth0", 53, 150, "")
    );
    let diff = sim.reload(a, &new_file);
    assert_eq!(diff.removed, vec!["VI_2"]);
    assert_eq!(
        diff.names(xvrrpd::daemon::reload::Change::Add),
        vec!["VI_3"]
    );
    sim.run_until(t(secs(25.0)));
    let b_vi2 = sim.nodes[b].instance("VI_2");
    assert_eq!(
        sim.nodes[b].timeline(b_vi2).last(),
        Some(&(removed_at + DELAY + skew(100), State::Master))
    );
    assert_eq!(sim.vip_holders("VI_2"), vec![b]);
    let vi3 = sim.nodes[a].instance("VI_3");
    assert_eq!(
        sim.nodes[a].timeline(vi3),
        vec![
            (removed_at, State::Backup),
            (removed_at + mdi(150), State::Master)
        ]
    );
    assert_eq!(sim.nodes[a].timeline(vi1).len(), 2);

    // VI_1's priority drops below the peer's by reload: advertised at once,
    // and the peer takes over after its down interval, as for a tracker.
    let drop_at = sim.now;
    sim.reload(a, &new_file.replacen("priority 200", "priority 50", 1));
    sim.run_until(t(secs(40.0)));
    assert!(sim.nodes[a].sent.contains(&(drop_at, vi1, 50)));
    assert_eq!(sim.masters("VI_1"), vec![b]);
    assert_eq!(sim.vip_holders("VI_1"), vec![b]);
}

#[test]
fn a_new_identity_restarts_the_instance() {
    let mut sim = pair(200, 100, "", "");
    sim.run_until(t(secs(10.5)));
    let old = sim.nodes[0].instance("VI_1");
    let at = sim.now;
    // Another VRID is another virtual router: the old one says goodbye.
    let diff = sim.reload(0, &instance("VI_1", "eth0", 61, 200, ""));
    assert_eq!(
        diff.names(xvrrpd::daemon::reload::Change::Replace),
        vec!["VI_1"]
    );
    sim.run_until(t(secs(20.0)));
    assert!(sim.nodes[0].sent.contains(&(at, old, 0)));
    let new = sim.nodes[0].instance("VI_1");
    assert_ne!(new, old);
    assert_eq!(
        sim.nodes[0].timeline(new),
        vec![(at, State::Backup), (at + mdi(200), State::Master)]
    );
    // The peer (still on VRID 51) takes over VRID 51 after Skew_Time.
    assert_eq!(
        sim.nodes[1].timeline(0).last(),
        Some(&(at + DELAY + skew(100), State::Master))
    );
}

#[test]
fn a_storm_of_forged_lower_priority_adverts_is_not_amplified() {
    let mut sim = pair(200, 100, "", "");
    sim.run_until(t(secs(10.0)));
    let from = sim.now;
    // 500 forged adverts at priority 50 from changing sources in 5 s.
    for k in 0..500u64 {
        let at = from + Duration::from_millis(10 * k);
        let src = format!("10.9.{}.{}", k / 250, k % 250 + 1);
        sim.forge(at, 0, "eth0", 51, &src, 50);
    }
    sim.run_until(from + secs(5.0));
    let sent = sim.nodes[0].sent.iter().filter(|s| s.0 >= from).count();
    // Five periodic adverts, plus at most one answer per advert interval.
    assert!(sent <= 5 + 5, "{sent} adverts sent in 5 s");
    assert!(sent > 5, "the storm was never answered at all");
    assert_eq!(sim.masters("VI_1"), vec![0]);
    assert_eq!(sim.nodes[1].timeline(0), vec![(EPOCH, State::Backup)]);
}

// ---- issue 13: deletions, re-created interfaces, startup delay ----------------

fn deleted(instance: usize, what: &str) -> Event {
    Event::Deleted {
        instance,
        what: what.into(),
    }
}

#[test]
fn a_deleted_vip_takes_the_master_out_and_it_comes_back_after_its_skew_time() {
    let mut sim = pair(150, 100, "", "");
    sim.run_until(t(secs(10.5)));
    assert_eq!(sim.masters("VI_1"), vec![0]);
    let gone = t(secs(10.5));
    sim.inject(gone, 0, deleted(0, "VIP 192.0.2.51 on eth0"));
    sim.run_until(t(secs(20.0)));
    // keepalived's set_vrrp_backup: priority 0, VIPs released, BACKUP, and a
    // down timer of Skew_Time only, so the master comes back (re-adding the
    // deleted VIP) before the peer, which heard the priority 0, can take over.
    assert!(sim.nodes[0].sent.contains(&(gone, 0, 0)));
    let back = gone + skew(150);
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(mdi(150)), State::Master),
            (gone, State::Backup),
            (back, State::Master),
        ]
    );
    assert_eq!(sim.nodes[0].changes[2].reason, Reason::Deleted);
    assert_eq!(sim.nodes[0].changes[3].reason, Reason::PriorityZeroReceived);
    assert!(skew(150) < skew(100), "the peer's skew is longer");
    assert_eq!(sim.nodes[1].timeline(0), vec![(EPOCH, State::Backup)]);
    assert_eq!(sim.vip_holders("VI_1"), vec![0]);
}

#[test]
fn a_deletion_reported_to_a_backup_changes_nothing() {
    let mut sim = pair(150, 100, "", "");
    sim.run_until(t(secs(10.5)));
    sim.inject(t(secs(10.5)), 1, deleted(0, "route 10.1.0.0/16"));
    sim.run_until(t(secs(20.0)));
    assert_eq!(sim.nodes[1].timeline(0), vec![(EPOCH, State::Backup)]);
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![(EPOCH, State::Backup), (t(mdi(150)), State::Master)]
    );
}

#[test]
fn a_deletion_in_a_sync_group_releases_every_master_member() {
    let mut sim = Sim::new();
    let a = sim.add_node("a", &group_node(200, ""), "10.0.0.1");
    let b = sim.add_node("b", &group_node(100, ""), "10.0.0.2");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    assert_eq!(sim.masters("VI_2"), vec![a]);
    let gone = t(secs(10.5));
    sim.inject(gone, a, deleted(1, "rule 100: from 10.0.0.10 lookup 1"));
    sim.run_until(t(secs(20.0)));
    for i in [0, 1] {
        // Both members send priority 0 and come back together.
        assert!(sim.nodes[a].sent.contains(&(gone, i, 0)), "member {i}");
        let timeline = sim.nodes[a].timeline(i);
        assert_eq!(timeline[2], (gone, State::Backup), "member {i}");
        assert_eq!(timeline[3].1, State::Master, "member {i}");
        assert!(timeline[3].0 <= gone + skew(200) + DELAY, "member {i}");
        assert_eq!(sim.nodes[b].timeline(i), vec![(EPOCH, State::Backup)]);
    }
    assert_eq!(sim.vip_holders("VI_1"), vec![a]);
    assert_eq!(sim.vip_holders("VI_2"), vec![a]);
}

fn link(ifindex: u32, name: &str, up: bool, removed: bool) -> Event {
    Event::Link {
        ifindex,
        name: name.into(),
        up,
        removed,
    }
}

#[test]
fn a_recreated_interface_is_bound_again_and_the_instance_recovers() {
    let mut sim = pair(200, 100, "", "");
    sim.run_until(t(secs(10.5)));
    let old = sim.ifindex(0, 0);
    let (gone, created, up) = (t(secs(10.5)), t(secs(12.0)), t(secs(12.5)));
    sim.inject(gone, 0, link(old, "eth0", false, true));
    // Created down (a new index), then up.
    sim.inject(created, 0, link(77, "eth0", false, false));
    sim.inject(up, 0, link(77, "eth0", true, false));
    sim.run_until(t(secs(30.0)));
    assert_eq!(sim.ifindex(0, 0), 77);
    assert_eq!(sim.nodes[0].rebinds.first(), Some(&(created, 0, 77)));
    // FAULT while gone (priority 0 sent, the peer takes over), BACKUP once the
    // new interface is up, then MASTER again by priority.
    assert!(sim.nodes[0].sent.contains(&(gone, 0, 0)));
    assert_eq!(
        sim.nodes[0].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(mdi(200)), State::Master),
            (gone, State::Fault),
            (up, State::Backup),
            (up + mdi(200), State::Master),
        ]
    );
    assert_eq!(sim.vip_holders("VI_1"), vec![0]);
}

#[test]
fn an_instance_on_a_missing_interface_waits_in_fault_then_runs() {
    let text = format!(
        "global_defs {{\n dynamic_interfaces\n}}\n{}",
        instance("VI_1", "eth0", 51, 200, "")
    );
    let mut sim = Sim::new();
    let a = sim.add_node("a", &text, "10.0.0.1");
    let b = sim.add_node("b", &instance("VI_1", "eth0", 51, 100, ""), "10.0.0.2");
    sim.without_interface(a, "eth0");
    sim.start(a, vec![]);
    sim.start(b, vec![]);
    let appears = t(secs(10.0));
    sim.inject(appears, a, link(5, "eth0", true, false));
    sim.run_until(t(secs(20.0)));
    assert_eq!(sim.ifindex(a, 0), 5);
    assert_eq!(
        sim.nodes[a].timeline(0),
        vec![
            (EPOCH, State::Fault),
            // Bound a moment after the link appeared.
            (appears + Duration::from_millis(1), State::Backup),
            (appears + Duration::from_millis(1) + mdi(200), State::Master),
        ]
    );
    assert_eq!(sim.nodes[a].changes[0].reason, Reason::Fault);
}

#[test]
fn startup_delay_holds_every_down_timer_until_it_has_passed() {
    let delayed = |priority: u8, state: &str| {
        format!(
            "global_defs {{\n vrrp_startup_delay 5\n}}\n{}",
            instance("VI_1", "eth0", 51, priority, state)
        )
    };
    let mut sim = Sim::new();
    let a = sim.add_node("a", &delayed(200, ""), "10.0.0.1");
    sim.start(a, vec![]);
    sim.run_until(t(secs(20.0)));
    assert_eq!(
        sim.nodes[a].timeline(0),
        vec![
            (EPOCH, State::Backup),
            (t(secs(5.0) + mdi(200)), State::Master)
        ]
    );
    // The address owner goes master as soon as the delay ends.
    let mut sim = Sim::new();
    let o = sim.add_node("o", &delayed(255, " state MASTER"), "10.0.0.1");
    sim.start(o, vec![]);
    sim.run_until(t(secs(20.0)));
    assert_eq!(
        sim.nodes[o].timeline(0),
        vec![(t(secs(5.0)), State::Master)]
    );
    assert_eq!(sim.nodes[o].changes[0].reason, Reason::AddressOwner);
}

#[test]
fn sync_group_trackers_apply_to_every_member_with_their_weight() {
    // The group tracks eth9 with weight -150: both members drop to 50 and the
    // peer's members (100) preempt; without a weight it would fault the group.
    let text = |priority: u8| {
        format!(
            "vrrp_sync_group G {{\n group {{\n VI_1\n VI_2\n }}\n track_interface {{\n eth9 weight -150\n }}\n}}\n{}{}",
            instance("VI_1", "eth0", 1, priority, ""),
            instance("VI_2", "eth1", 2, priority, "")
        )
    };
    let mut sim = Sim::new();
    let a = sim.add_node("a", &text(200), "10.0.0.1");
    let b = sim.add_node("b", &group_node(100, ""), "10.0.0.2");
    let eth9 = TrackerId::Interface("eth9".into());
    sim.start(a, vec![(eth9.clone(), Status::Up(true))]);
    sim.start(b, vec![]);
    sim.run_until(t(secs(10.5)));
    assert_eq!(sim.masters("VI_1"), vec![a]);
    sim.inject(t(secs(10.5)), a, link(99, "eth9", false, false));
    sim.run_until(t(secs(20.0)));
    assert_eq!(sim.masters("VI_1"), vec![b]);
    assert_eq!(sim.masters("VI_2"), vec![b]);
    for i in [0, 1] {
        assert_eq!(
            sim.nodes[a]
                .controller
                .engine(i)
                .unwrap()
                .effective_priority(),
            50
        );
        assert_eq!(sim.nodes[a].state(i), State::Backup);
    }
}

#[test]
fn down_timer_adverts_lengthens_the_master_down_interval() {
    let mut sim = Sim::new();
    let a = sim.add_node(
        "a",
        &instance("VI_1", "eth0", 51, 200, " down_timer_adverts 5"),
        "10.0.0.1",
    );
    sim.start(a, vec![]);
    sim.run_until(t(secs(20.0)));
    let five = timers::master_down_interval(Version::V2, 200, SECOND, 5);
    assert_eq!(five, 5 * SECOND + skew(200));
    assert_eq!(
        sim.nodes[a].timeline(0),
        vec![(EPOCH, State::Backup), (t(five), State::Master)]
    );
}

#[test]
fn dont_track_primary_ignores_the_link_state_but_not_its_loss() {
    let mut sim = pair(200, 100, " dont_track_primary", "");
    sim.run_until(t(secs(10.5)));
    let index = sim.ifindex(0, 0);
    // Down: still master.
    sim.inject(t(secs(10.5)), 0, link(index, "eth0", false, false));
    sim.run_until(t(secs(15.0)));
    assert_eq!(sim.masters("VI_1"), vec![0]);
    // Gone: FAULT all the same, as keepalived downs every instance of a lost interface.
    sim.inject(t(secs(15.0)), 0, link(index, "eth0", false, true));
    sim.run_until(t(secs(20.0)));
    assert_eq!(sim.nodes[0].state(0), State::Fault);
    assert_eq!(sim.masters("VI_1"), vec![1]);
}
