//! The state machine on a simulated clock: no sleeping, exact nanoseconds.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use proptest::prelude::*;

use super::*;
use crate::{packet::Version, time::Mono};

const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const LOWER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const HIGHER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
const SECOND: Duration = Duration::from_secs(1);
/// v2/v3 at priority 100 and 1 s: 3 s + 156/256 s.
const MDI_100: Duration = Duration::from_micros(3_609_375);
const SKEW_100: Duration = Duration::from_micros(609_375);

/// A start time far from zero so "earlier" is representable.
fn t0() -> Mono {
    Mono(1_000 * 1_000_000_000)
}

fn at(offset: Duration) -> Mono {
    t0() + offset
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn params(version: Version, priority: u8) -> InstanceParams {
    InstanceParams {
        priority,
        ..InstanceParams::new("VI_1", 51, version, OURS)
    }
}

fn started(params: InstanceParams) -> Instance {
    let mut instance = Instance::new(params).unwrap();
    instance.handle(Input::Startup, t0());
    instance
}

fn advert(src: IpAddr, priority: u8, arrived: Mono) -> Input {
    Input::Advert(AdvertSeen {
        src,
        priority,
        interval: SECOND,
        arrived,
    })
}

fn transitions(actions: &[Action]) -> Vec<(State, State, Reason)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Transition {
                from, to, reason, ..
            } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

fn become_master_actions(priority: u8, from: State, reason: Reason) -> Vec<Action> {
    vec![
        Action::SendAdvert { priority },
        Action::AddVips,
        Action::SendGarpBurst(GarpBurst {
            count: 5,
            spacing: Duration::ZERO,
            cause: GarpCause::BecameMaster,
        }),
        Action::Transition {
            from,
            to: State::Master,
            reason,
            priority,
        },
    ]
}

/// Backup at t0 whose down timer runs out: now master at `t0 + MDI`.
fn master_at_mdi(params: InstanceParams) -> (Instance, Mono) {
    let mut instance = started(params);
    let deadline = instance.next_deadline().unwrap();
    instance.handle(Input::Timer, deadline);
    assert_eq!(instance.state(), State::Master);
    (instance, deadline)
}

fn ignored(actions: &[Action]) -> Option<IgnoreReason> {
    match actions {
        [Action::AdvertIgnored { reason, .. }] => Some(*reason),
        _ => None,
    }
}

// Startup and timers.

#[test]
fn startup_enters_backup_with_v2_down_timer() {
    let mut instance = Instance::new(params(Version::V2, 100)).unwrap();
    assert_eq!(instance.state(), State::Initialize);
    assert_eq!(instance.next_deadline(), None);
    let actions = instance.handle(Input::Startup, t0());
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup,
            priority: 100
        }]
    );
    assert_eq!(instance.master_down_interval(), MDI_100);
    assert_eq!(instance.skew_time(), SKEW_100);
    assert_eq!(instance.next_deadline(), Some(at(MDI_100)));
    // A second Startup changes nothing.
    assert!(instance.handle(Input::Startup, at(SECOND)).is_empty());
}

#[test]
fn v3_down_timer_at_one_second_and_fifty_ms() {
    let instance = started(params(Version::V3, 100));
    assert_eq!(instance.master_down_interval(), MDI_100);
    assert_eq!(instance.next_deadline(), Some(at(MDI_100)));

    let fast = started(InstanceParams {
        advert_interval: ms(50),
        ..params(Version::V3, 100)
    });
    assert_eq!(fast.skew_time(), Duration::from_nanos(30_468_750));
    assert_eq!(
        fast.master_down_interval(),
        Duration::from_nanos(180_468_750)
    );
    assert_eq!(
        fast.next_deadline(),
        Some(at(Duration::from_nanos(180_468_750)))
    );
}

#[test]
fn down_timer_expiry_becomes_master() {
    let mut instance = started(params(Version::V2, 100));
    let deadline = at(MDI_100);
    assert!(instance
        .handle(Input::Timer, deadline - Duration::from_nanos(1))
        .is_empty());
    assert_eq!(instance.state(), State::Backup);
    let actions = instance.handle(Input::Timer, deadline);
    assert_eq!(
        actions,
        become_master_actions(100, State::Backup, Reason::MasterDownTimer)
    );
    assert_eq!(instance.master_addr(), Some(OURS));
}

#[test]
fn master_advertises_every_interval_without_catch_up() {
    let mut p = params(Version::V2, 100);
    p.garp.master_delay = Duration::ZERO; // keep the deadlines to adverts only
    let (mut instance, became) = master_at_mdi(p);
    assert_eq!(instance.next_deadline(), Some(became + SECOND));
    assert!(instance.handle(Input::Timer, became + ms(999)).is_empty());
    assert_eq!(
        instance.handle(Input::Timer, became + SECOND),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(instance.next_deadline(), Some(became + 2 * SECOND));
    // Woken 2.5 intervals late: one advert, then one interval from now.
    let late = became + ms(4_500);
    assert_eq!(
        instance.handle(Input::Timer, late),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(instance.next_deadline(), Some(late + SECOND));
}

#[test]
fn garp_master_delay_sends_a_second_burst() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    for second in 1..5 {
        instance.handle(Input::Timer, became + SECOND * second);
    }
    assert_eq!(instance.next_deadline(), Some(became + 5 * SECOND));
    let actions = instance.handle(Input::Timer, became + 5 * SECOND);
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::SendGarpBurst(GarpBurst {
                count: 5,
                spacing: Duration::ZERO,
                cause: GarpCause::MasterDelay
            }),
        ]
    );
    // Only once.
    let actions = instance.handle(Input::Timer, became + 6 * SECOND);
    assert_eq!(actions, vec![Action::SendAdvert { priority: 100 }]);
}

#[test]
fn garp_refresh_is_periodic_and_delay_zero_disables_second_burst() {
    let mut p = params(Version::V2, 100);
    p.garp.master_delay = Duration::ZERO;
    p.garp.master_refresh = ms(2_500);
    p.garp.master_refresh_repeat = 2;
    p.garp.spacing = ms(1);
    let (mut instance, became) = master_at_mdi(p);
    let refresh = |instance: &mut Instance, now| {
        instance
            .handle(Input::Timer, now)
            .into_iter()
            .filter(|a| matches!(a, Action::SendGarpBurst(_)))
            .collect::<Vec<_>>()
    };
    assert!(refresh(&mut instance, became + SECOND).is_empty());
    assert!(refresh(&mut instance, became + 2 * SECOND).is_empty());
    assert_eq!(instance.next_deadline(), Some(became + ms(2_500)));
    let burst = Action::SendGarpBurst(GarpBurst {
        count: 2,
        spacing: ms(1),
        cause: GarpCause::Refresh,
    });
    assert_eq!(
        refresh(&mut instance, became + ms(2_500)),
        vec![burst.clone()]
    );
    assert!(refresh(&mut instance, became + 3 * SECOND).is_empty());
    assert!(refresh(&mut instance, became + 4 * SECOND).is_empty());
    assert_eq!(refresh(&mut instance, became + 5 * SECOND), vec![burst]);
}

// Backup receiving adverts.

#[test]
fn backup_resets_down_timer_from_kernel_arrival_not_now() {
    let mut instance = started(params(Version::V2, 100));
    let arrived = at(SECOND);
    // Processed 2 s late: the deadline still counts from arrival.
    let actions = instance.handle(advert(HIGHER_ADDR, 150, arrived), at(3 * SECOND));
    assert!(actions.is_empty());
    assert_eq!(instance.next_deadline(), Some(arrived + MDI_100));
    assert_eq!(instance.master_addr(), Some(HIGHER_ADDR));
}

#[test]
fn backup_equal_priority_never_preempts() {
    let mut instance = started(params(Version::V2, 100));
    instance.handle(advert(LOWER_ADDR, 100, at(SECOND)), at(SECOND));
    assert_eq!(instance.next_deadline(), Some(at(SECOND) + MDI_100));
}

#[test]
fn backup_ignores_lower_priority_and_takes_over() {
    let mut instance = started(params(Version::V2, 100));
    for second in 1..=3 {
        let actions = instance.handle(
            advert(HIGHER_ADDR, 50, at(SECOND * second)),
            at(SECOND * second),
        );
        assert_eq!(ignored(&actions), Some(IgnoreReason::LowerPriority));
        assert_eq!(instance.next_deadline(), Some(at(MDI_100)));
    }
    let actions = instance.handle(Input::Timer, at(MDI_100));
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Master, Reason::MasterDownTimer)]
    );
}

#[test]
fn nopreempt_accepts_lower_priority() {
    let mut instance = started(InstanceParams {
        preempt: false,
        ..params(Version::V2, 100)
    });
    let actions = instance.handle(advert(HIGHER_ADDR, 50, at(SECOND)), at(SECOND));
    assert!(actions.is_empty());
    assert_eq!(instance.next_deadline(), Some(at(SECOND) + MDI_100));
    assert!(instance.handle(Input::Timer, at(MDI_100)).is_empty());
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn preempt_delay_starts_at_first_lower_priority_advert() {
    let mut instance = started(InstanceParams {
        preempt_delay: 10 * SECOND,
        ..params(Version::V2, 100)
    });
    // Lower-priority master seen from t0+1 s: delay runs to t0+11 s, and
    // the engine asks to be woken just before it ends (to read the last
    // advert inside it).
    let wake = at(11 * SECOND) - Duration::from_nanos(1);
    for second in 1..11 {
        let arrived = at(SECOND * second);
        assert!(instance
            .handle(advert(LOWER_ADDR, 50, arrived), arrived)
            .is_empty());
        assert_eq!(
            instance.next_deadline(),
            Some((arrived + MDI_100).min(wake))
        );
    }
    // That wake changes nothing by itself.
    assert!(instance.handle(Input::Timer, wake).is_empty());
    // From t0+11 s lower-priority adverts are ignored.
    let actions = instance.handle(advert(LOWER_ADDR, 50, at(11 * SECOND)), at(11 * SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::LowerPriority));
    let deadline = at(10 * SECOND) + MDI_100;
    assert_eq!(instance.next_deadline(), Some(deadline));
    let actions = instance.handle(Input::Timer, deadline);
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Master, Reason::MasterDownTimer)]
    );
}

#[test]
fn preempt_delay_is_cancelled_by_a_higher_priority_advert() {
    let mut instance = started(InstanceParams {
        preempt_delay: 5 * SECOND,
        ..params(Version::V2, 100)
    });
    instance.handle(advert(LOWER_ADDR, 50, at(SECOND)), at(SECOND)); // delay to t0+6 s
    instance.handle(advert(HIGHER_ADDR, 200, at(2 * SECOND)), at(2 * SECOND)); // cancelled
                                                                               // The next lower-priority advert starts a fresh delay (to t0+8 s).
    for second in 3..8 {
        let arrived = at(SECOND * second);
        assert!(instance
            .handle(advert(LOWER_ADDR, 50, arrived), arrived)
            .is_empty());
    }
    let actions = instance.handle(advert(LOWER_ADDR, 50, at(8 * SECOND)), at(8 * SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::LowerPriority));
}

#[test]
fn priority_zero_in_backup_shortens_to_skew() {
    let mut instance = started(params(Version::V2, 100));
    instance.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(SECOND));
    let arrived = at(2 * SECOND);
    assert!(instance
        .handle(advert(HIGHER_ADDR, 0, arrived), arrived)
        .is_empty());
    assert_eq!(instance.next_deadline(), Some(arrived + SKEW_100));
    let actions = instance.handle(Input::Timer, arrived + SKEW_100);
    assert_eq!(
        actions,
        become_master_actions(100, State::Backup, Reason::PriorityZeroReceived)
    );
}

#[test]
fn v3_backup_adopts_the_masters_interval() {
    let mut instance = started(params(Version::V3, 100));
    let arrived = at(SECOND);
    let actions = instance.handle(
        Input::Advert(AdvertSeen {
            src: HIGHER_ADDR,
            priority: 150,
            interval: 2 * SECOND,
            arrived,
        }),
        arrived,
    );
    assert_eq!(
        actions,
        vec![Action::MasterIntervalAdopted {
            from: SECOND,
            to: 2 * SECOND
        }]
    );
    assert_eq!(instance.master_adver_interval(), 2 * SECOND);
    // 3 × 2 s + 156 × 2 s / 256 = 7.21875 s
    assert_eq!(
        instance.master_down_interval(),
        Duration::from_micros(7_218_750)
    );
    assert_eq!(
        instance.next_deadline(),
        Some(arrived + Duration::from_micros(7_218_750))
    );
    // A lower-priority (ignored) advert does not change it.
    instance.handle(
        Input::Advert(AdvertSeen {
            src: LOWER_ADDR,
            priority: 50,
            interval: ms(50),
            arrived: at(2 * SECOND),
        }),
        at(2 * SECOND),
    );
    assert_eq!(instance.master_adver_interval(), 2 * SECOND);
    // Fault and recovery go back to our own interval.
    instance.handle(Input::Fault(true), at(3 * SECOND));
    instance.handle(Input::Fault(false), at(4 * SECOND));
    assert_eq!(instance.master_adver_interval(), SECOND);
}

#[test]
fn v2_interval_mismatch_is_dropped() {
    let mut instance = started(params(Version::V2, 100));
    let actions = instance.handle(
        Input::Advert(AdvertSeen {
            src: HIGHER_ADDR,
            priority: 150,
            interval: 2 * SECOND,
            arrived: at(SECOND),
        }),
        at(SECOND),
    );
    assert_eq!(
        ignored(&actions),
        Some(IgnoreReason::IntervalMismatch {
            ours: SECOND,
            theirs: 2 * SECOND
        })
    );
    assert_eq!(instance.next_deadline(), Some(at(MDI_100)));
}

#[test]
fn own_address_family_mismatch_and_zero_interval_are_ignored() {
    let mut instance = started(params(Version::V3, 100));
    let actions = instance.handle(advert(OURS, 200, at(SECOND)), at(SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::OwnAddress));
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let actions = instance.handle(advert(v6, 200, at(SECOND)), at(SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::FamilyMismatch));
    let actions = instance.handle(
        Input::Advert(AdvertSeen {
            src: HIGHER_ADDR,
            priority: 200,
            interval: Duration::ZERO,
            arrived: at(SECOND),
        }),
        at(SECOND),
    );
    assert_eq!(ignored(&actions), Some(IgnoreReason::ZeroInterval));
    assert_eq!(instance.next_deadline(), Some(at(MDI_100)));
}

#[test]
fn stale_adverts_do_not_move_timers() {
    let mut instance = started(params(Version::V2, 100));
    instance.handle(advert(HIGHER_ADDR, 150, at(2 * SECOND)), at(2 * SECOND));
    // An older record read afterwards (e.g. another source's map entry).
    let actions = instance.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(2 * SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::Stale));
    assert_eq!(instance.next_deadline(), Some(at(2 * SECOND) + MDI_100));
    // A stale priority 0 does not shorten the timer either.
    let actions = instance.handle(advert(HIGHER_ADDR, 0, at(SECOND)), at(2 * SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::Stale));

    // Master: records from before we became master.
    let (mut master, became) = master_at_mdi(params(Version::V2, 100));
    let actions = master.handle(
        advert(HIGHER_ADDR, 200, became - instance::ARRIVAL_SLACK - ms(1)),
        became,
    );
    assert_eq!(ignored(&actions), Some(IgnoreReason::Stale));
    assert_eq!(master.state(), State::Master);
}

#[test]
fn a_master_steps_down_for_an_advert_stamped_by_the_coarse_clock_just_before_its_takeover() {
    // The higher-priority master's advert arrives right after the takeover
    // (its records were read at the takeover), stamped up to a tick early.
    let (mut master, became) = master_at_mdi(params(Version::V2, 100));
    master.handle(advert(HIGHER_ADDR, 200, became - ms(4)), became + ms(2));
    assert_eq!(master.state(), State::Backup);
}

#[test]
fn late_daemon_with_fresh_kernel_timestamp_stays_backup() {
    let mut instance = started(params(Version::V2, 100));
    instance.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(SECOND));
    // Starved for 20 s: the timer fires way past its deadline, but the map
    // holds an advert that arrived 100 ms ago; the daemon feeds it first.
    let now = at(21 * SECOND);
    assert!(now > instance.next_deadline().unwrap());
    instance.handle(advert(HIGHER_ADDR, 150, now - ms(100)), now);
    assert!(instance.handle(Input::Timer, now).is_empty());
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(instance.next_deadline(), Some(now - ms(100) + MDI_100));

    // Without a fresh record the master really is gone.
    let mut alone = started(params(Version::V2, 100));
    alone.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(SECOND));
    let actions = alone.handle(Input::Timer, now);
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Master, Reason::MasterDownTimer)]
    );
}

// Master receiving adverts.

#[test]
fn master_yields_to_higher_priority() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let arrived = became + ms(300);
    let actions = instance.handle(advert(LOWER_ADDR, 101, arrived), arrived + ms(5));
    assert_eq!(
        actions,
        vec![
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HigherPriorityAdvert,
                priority: 100
            }
        ]
    );
    assert_eq!(instance.next_deadline(), Some(arrived + MDI_100));
    assert_eq!(instance.master_addr(), Some(LOWER_ADDR));
}

#[test]
fn master_equal_priority_tie_break_both_ways() {
    // Their address is higher: they win.
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(advert(HIGHER_ADDR, 100, became + ms(10)), became + ms(10));
    assert_eq!(
        transitions(&actions),
        vec![(
            State::Master,
            State::Backup,
            Reason::EqualPriorityHigherAddress
        )]
    );

    // Their address is lower: we stay and force a new election.
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(advert(LOWER_ADDR, 100, became + ms(10)), became + ms(10));
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::SendGarpBurst(GarpBurst {
                count: 5,
                spacing: Duration::ZERO,
                cause: GarpCause::LowerPriorityAdvert
            }),
        ]
    );
    assert_eq!(instance.state(), State::Master);
}

#[test]
fn tie_break_compares_ipv6_addresses_as_numbers() {
    let ours: IpAddr = "fe80::2".parse().unwrap();
    let p = InstanceParams {
        priority: 100,
        ..InstanceParams::new("VI_6", 1, Version::V3, ours)
    };
    let (mut instance, became) = master_at_mdi(p);
    let higher: IpAddr = "fe80::1:0".parse().unwrap();
    let actions = instance.handle(advert(higher, 100, became + ms(10)), became + ms(10));
    assert_eq!(
        transitions(&actions),
        vec![(
            State::Master,
            State::Backup,
            Reason::EqualPriorityHigherAddress
        )]
    );
}

#[test]
fn master_lower_priority_with_lower_prio_delay() {
    let mut p = params(Version::V2, 100);
    p.garp.lower_prio_repeat = 2;
    p.garp.lower_prio_delay = ms(1_500);
    let (mut instance, became) = master_at_mdi(p);
    let now = became + ms(200);
    let actions = instance.handle(advert(HIGHER_ADDR, 50, now), now);
    assert_eq!(actions.len(), 2);
    assert_eq!(instance.next_deadline(), Some(became + SECOND));
    instance.handle(Input::Timer, became + SECOND);
    assert_eq!(instance.next_deadline(), Some(now + ms(1_500)));
    let actions = instance.handle(Input::Timer, now + ms(1_500));
    assert_eq!(
        actions,
        vec![Action::SendGarpBurst(GarpBurst {
            count: 2,
            spacing: Duration::ZERO,
            cause: GarpCause::LowerPriorityDelay
        })]
    );
}

#[test]
fn lower_prio_no_advert_keeps_the_master_quiet() {
    let mut p = params(Version::V2, 100);
    p.lower_prio_no_advert = true;
    p.garp.lower_prio_repeat = 0;
    let (mut instance, became) = master_at_mdi(p);
    let now = became + ms(200);
    let actions = instance.handle(advert(HIGHER_ADDR, 50, now), now);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(instance.state(), State::Master);
}

#[test]
fn higher_prio_send_advert_answers_before_yielding() {
    let mut p = params(Version::V2, 100);
    p.higher_prio_send_advert = true;
    let (mut instance, became) = master_at_mdi(p);
    let now = became + ms(200);
    let actions = instance.handle(advert(HIGHER_ADDR, 150, now), now);
    assert_eq!(actions[0], Action::SendAdvert { priority: 100 });
    assert!(actions.contains(&Action::RemoveVips));
    assert_eq!(instance.state(), State::Backup);
    // Without it, no advert on the way out.
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let now = became + ms(200);
    let actions = instance.handle(advert(HIGHER_ADDR, 150, now), now);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::SendAdvert { .. })));
}

#[test]
fn priority_zero_in_master_advertises_at_once() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(advert(HIGHER_ADDR, 0, became + ms(10)), became + ms(10));
    assert_eq!(actions, vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(instance.state(), State::Master);
}

#[test]
fn answers_to_lower_priority_and_priority_zero_adverts_are_rate_limited() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    // A flood: 100 lower-priority or priority-0 adverts in one interval.
    let mut answers = 0;
    for k in 0..100u64 {
        let at = became + ms(10 + 9 * k);
        let priority = if k % 2 == 0 { 50 } else { 0 };
        let actions = instance.handle(advert(HIGHER_ADDR, priority, at), at);
        if actions
            .iter()
            .any(|a| matches!(a, Action::SendAdvert { .. }))
        {
            answers += 1;
        } else {
            assert_eq!(ignored(&actions), Some(IgnoreReason::RateLimited));
        }
    }
    assert_eq!(answers, 1, "one answer per advert interval");
    // An interval after the first answer, the next one is answered again.
    let later = became + ms(10) + SECOND;
    let actions = instance.handle(advert(HIGHER_ADDR, 50, later), later);
    assert_eq!(actions.len(), 2, "{actions:?}");
    // A better master is never rate-limited: it always wins at once.
    let t = later + ms(1);
    let actions = instance.handle(advert(HIGHER_ADDR, 200, t), t);
    assert_eq!(
        transitions(&actions),
        vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
    );
}

// Initial state and the address owner.

#[test]
fn address_owner_with_state_master_goes_master_at_once() {
    let mut instance = Instance::new(InstanceParams {
        initial_state_master: true,
        ..params(Version::V2, 255)
    })
    .unwrap();
    let actions = instance.handle(Input::Startup, t0());
    assert_eq!(
        actions,
        become_master_actions(255, State::Initialize, Reason::AddressOwner)
    );
    // Tracking never changes the owner's priority.
    assert!(instance
        .handle(Input::SetPriority(10), at(SECOND))
        .is_empty());
    assert_eq!(instance.effective_priority(), 255);
}

#[test]
fn address_owner_with_state_backup_waits_like_backup() {
    let instance = started(params(Version::V2, 255));
    assert_eq!(instance.state(), State::Backup);
    // 3 s + 1/256 s
    assert_eq!(
        instance.next_deadline(),
        Some(at(Duration::from_nanos(3_003_906_250)))
    );
}

#[test]
fn state_master_without_owner_priority_waits_a_shortened_down_timer() {
    let mut instance = started(InstanceParams {
        initial_state_master: true,
        ..params(Version::V2, 100)
    });
    assert_eq!(instance.state(), State::Backup);
    // keepalived: Master_Adver_Interval + Skew_min = 1 s + 1/256 s.
    let deadline = at(Duration::from_nanos(1_003_906_250));
    assert_eq!(instance.next_deadline(), Some(deadline));
    // A better master heard in time holds it in backup with the full timer.
    instance.handle(advert(HIGHER_ADDR, 200, at(ms(500))), at(ms(500)));
    assert_eq!(instance.next_deadline(), Some(at(ms(500)) + MDI_100));
    assert!(instance.handle(Input::Timer, deadline).is_empty());
}

// Priority changes.

#[test]
fn set_priority_as_master_advertises_at_once() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(Input::SetPriority(80), became + ms(100));
    assert_eq!(actions, vec![Action::SendAdvert { priority: 80 }]);
    assert!(instance
        .handle(Input::SetPriority(80), became + ms(200))
        .is_empty());
    // 255 is the owner's alone, 0 means "leaving": clamped to 1..=254.
    instance.handle(Input::SetPriority(255), became + ms(250));
    assert_eq!(instance.effective_priority(), 254);
    instance.handle(Input::SetPriority(0), became + ms(300));
    assert_eq!(instance.effective_priority(), 1);
    // The new priority decides the next election.
    let actions = instance.handle(advert(HIGHER_ADDR, 50, became + ms(400)), became + ms(400));
    assert_eq!(
        transitions(&actions),
        vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
    );
}

#[test]
fn set_priority_as_backup_moves_the_deadline_and_enables_preemption() {
    let mut instance = started(params(Version::V2, 100));
    instance.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(SECOND));
    assert!(instance
        .handle(Input::SetPriority(200), at(ms(1_500)))
        .is_empty());
    // Skew at 200: 56/256 s = 0.21875 s.
    assert_eq!(
        instance.next_deadline(),
        Some(at(SECOND) + Duration::from_micros(3_218_750))
    );
    // The old master is now lower: ignored, so we preempt at expiry.
    let actions = instance.handle(advert(HIGHER_ADDR, 150, at(2 * SECOND)), at(2 * SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::LowerPriority));
    let actions = instance.handle(Input::Timer, at(SECOND) + Duration::from_micros(3_218_750));
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Master, Reason::MasterDownTimer)]
    );
    assert!(actions.contains(&Action::SendAdvert { priority: 200 }));
}

// Fault and shutdown.

#[test]
fn fault_before_startup_starts_in_fault() {
    let mut instance = Instance::new(params(Version::V2, 100)).unwrap();
    assert!(instance.handle(Input::Fault(true), t0()).is_empty());
    let actions = instance.handle(Input::Startup, t0());
    assert_eq!(
        transitions(&actions),
        vec![(State::Initialize, State::Fault, Reason::Fault)]
    );
    assert_eq!(instance.next_deadline(), None);
    let actions = instance.handle(advert(HIGHER_ADDR, 150, at(SECOND)), at(SECOND));
    assert_eq!(ignored(&actions), Some(IgnoreReason::InFault));
    assert!(instance.handle(Input::Timer, at(10 * SECOND)).is_empty());
    // Recovery: BACKUP with a fresh down timer from now.
    let actions = instance.handle(Input::Fault(false), at(20 * SECOND));
    assert_eq!(
        transitions(&actions),
        vec![(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(instance.next_deadline(), Some(at(20 * SECOND) + MDI_100));
}

#[test]
fn fault_cleared_before_startup_is_forgotten() {
    let mut instance = Instance::new(params(Version::V2, 100)).unwrap();
    instance.handle(Input::Fault(true), t0());
    instance.handle(Input::Fault(false), t0());
    instance.handle(Input::Startup, t0());
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn fault_as_master_sends_priority_zero_and_removes_vips() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(Input::Fault(true), became + SECOND);
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault,
                priority: 100
            }
        ]
    );
    assert_eq!(instance.next_deadline(), None);
    assert!(instance
        .handle(Input::Fault(true), became + SECOND)
        .is_empty());
}

#[test]
fn fault_as_backup_is_silent() {
    let mut instance = started(params(Version::V2, 100));
    let actions = instance.handle(Input::Fault(true), at(SECOND));
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Fault, Reason::Fault)]
    );
    assert_eq!(actions.len(), 1);
}

#[test]
fn owner_recovering_from_fault_goes_master_at_once() {
    let mut instance = Instance::new(InstanceParams {
        initial_state_master: true,
        ..params(Version::V2, 255)
    })
    .unwrap();
    instance.handle(Input::Startup, t0());
    instance.handle(Input::Fault(true), at(SECOND));
    let actions = instance.handle(Input::Fault(false), at(2 * SECOND));
    assert_eq!(
        transitions(&actions),
        vec![(State::Fault, State::Master, Reason::AddressOwner)]
    );
}

#[test]
fn shutdown_as_master_sends_priority_zero() {
    let (mut instance, became) = master_at_mdi(params(Version::V2, 100));
    let actions = instance.handle(Input::Shutdown, became + SECOND);
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Stopped,
                reason: Reason::Shutdown,
                priority: 100
            }
        ]
    );
    assert_eq!(instance.next_deadline(), None);
    // Inert afterwards.
    assert!(instance.handle(Input::Shutdown, became + SECOND).is_empty());
    assert!(instance
        .handle(Input::Timer, became + 9 * SECOND)
        .is_empty());
    assert!(instance
        .handle(Input::Fault(true), became + 9 * SECOND)
        .is_empty());
    let actions = instance.handle(
        advert(HIGHER_ADDR, 1, became + 9 * SECOND),
        became + 9 * SECOND,
    );
    assert_eq!(ignored(&actions), Some(IgnoreReason::Stopped));
}

#[test]
fn shutdown_as_backup_only_transitions() {
    let mut instance = started(params(Version::V2, 100));
    let actions = instance.handle(Input::Shutdown, at(SECOND));
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Stopped, Reason::Shutdown)]
    );
    assert_eq!(actions.len(), 1);
}

#[test]
fn adverts_before_startup_are_ignored() {
    let mut instance = Instance::new(params(Version::V2, 100)).unwrap();
    let actions = instance.handle(advert(HIGHER_ADDR, 150, t0()), t0());
    assert_eq!(ignored(&actions), Some(IgnoreReason::NotStarted));
}

#[test]
fn invalid_params_are_rejected() {
    let base = params(Version::V2, 100);
    let check = |p: InstanceParams| Instance::new(p).err();
    assert_eq!(
        check(InstanceParams {
            vrid: 0,
            ..base.clone()
        }),
        Some(ParamsError::VridZero)
    );
    assert_eq!(
        check(InstanceParams {
            priority: 0,
            ..base.clone()
        }),
        Some(ParamsError::PriorityZero)
    );
    assert_eq!(
        check(InstanceParams {
            advert_interval: ms(1_500),
            ..base.clone()
        }),
        Some(ParamsError::V2Interval(ms(1_500)))
    );
    assert_eq!(
        check(InstanceParams {
            advert_interval: 256 * SECOND,
            ..base.clone()
        }),
        Some(ParamsError::V2Interval(256 * SECOND))
    );
    let v3 = params(Version::V3, 100);
    assert_eq!(
        check(InstanceParams {
            advert_interval: ms(15),
            ..v3.clone()
        }),
        Some(ParamsError::V3Interval(ms(15)))
    );
    assert_eq!(
        check(InstanceParams {
            advert_interval: ms(40_960),
            ..v3.clone()
        }),
        Some(ParamsError::V3Interval(ms(40_960)))
    );
    assert!(check(InstanceParams {
        advert_interval: ms(40_950),
        ..v3.clone()
    })
    .is_none());
    let v6: IpAddr = "fe80::1".parse().unwrap();
    assert_eq!(
        check(InstanceParams::new("x", 1, Version::V2, v6)),
        Some(ParamsError::V2OverIpv6)
    );
    assert!(matches!(
        check(InstanceParams {
            primary_addr: v6,
            ..v3.clone()
        }),
        Some(ParamsError::PrimaryAddrFamily { .. })
    ));
    assert_eq!(
        check(InstanceParams {
            down_timer_adverts: 0,
            ..v3
        }),
        Some(ParamsError::DownTimerAdverts(0))
    );
}

// Invariants over arbitrary input sequences.

fn arb_input() -> impl Strategy<Value = (Input, u64)> {
    let src = prop_oneof![Just(LOWER_ADDR), Just(HIGHER_ADDR), Just(OURS)];
    let seen = (
        src,
        any::<u8>(),
        prop_oneof![Just(SECOND), Just(2 * SECOND)],
        0u64..3_000,
    )
        .prop_map(|(src, priority, interval, age_ms)| (src, priority, interval, age_ms));
    let input = prop_oneof![
        1 => Just(Input::Startup),
        6 => seen.prop_map(|(src, priority, interval, age_ms)| {
            // `arrived` is filled in relative to `now` below.
            Input::Advert(AdvertSeen { src, priority, interval, arrived: Mono(age_ms) })
        }),
        6 => Just(Input::Timer),
        2 => any::<u8>().prop_map(Input::SetPriority),
        1 => any::<bool>().prop_map(Input::Fault),
        1 => Just(Input::SyncMaster),
        1 => Just(Input::SyncBackup),
        1 => Just(Input::Shutdown),
    ];
    (input, 0u64..4_000)
}

proptest! {
    #[test]
    fn prop_state_machine_invariants(
        version in prop_oneof![Just(Version::V2), Just(Version::V3)],
        priority in 1u8..=255,
        preempt in any::<bool>(),
        preempt_delay_s in 0u64..5,
        initial_state_master in any::<bool>(),
        sync_group in any::<bool>(),
        steps in prop::collection::vec(arb_input(), 1..80),
    ) {
        let mut instance = Instance::new(InstanceParams {
            sync_group,
            preempt,
            preempt_delay: Duration::from_secs(preempt_delay_s),
            initial_state_master,
            ..params(version, priority)
        }).unwrap();
        let mut now = t0();
        let mut vips_held = false;
        for (input, advance_ms) in steps {
            now = now + ms(advance_ms);
            let input = match input {
                Input::Advert(mut seen) => {
                    seen.arrived = now - ms(seen.arrived.0);
                    Input::Advert(seen)
                }
                other => other,
            };
            let before = instance.state();
            let actions = instance.handle(input, now);
            let mut state = before;
            for action in &actions {
                match action {
                    Action::AddVips => {
                        prop_assert!(!vips_held, "VIPs added twice");
                        vips_held = true;
                    }
                    Action::RemoveVips => {
                        prop_assert!(vips_held, "VIPs removed while not held");
                        vips_held = false;
                    }
                    Action::SendAdvert { priority: 0 } => {
                        prop_assert_eq!(state, State::Master, "priority 0 sent by a non-master");
                    }
                    Action::SendAdvert { .. } | Action::SendGarpBurst(_) => {
                        prop_assert!(matches!(state, State::Master | State::Backup | State::Initialize | State::Fault));
                    }
                    Action::Transition { from, to, .. } => {
                        prop_assert_eq!(*from, state);
                        prop_assert_ne!(from, to);
                        state = *to;
                    }
                    Action::AdvertIgnored { .. } | Action::MasterIntervalAdopted { .. } => {}
                }
            }
            prop_assert_eq!(state, instance.state());
            // VIPs are held exactly while master.
            prop_assert_eq!(vips_held, instance.state() == State::Master);
            // Timers: armed only in Backup/Master, never in the past after a Timer.
            match instance.state() {
                State::Backup | State::Master => prop_assert!(instance.next_deadline().is_some()),
                State::Initialize | State::Fault | State::Stopped => {
                    prop_assert!(instance.next_deadline().is_none())
                }
            }
            if input == Input::Timer && instance.state() == State::Master {
                prop_assert!(instance.next_deadline().unwrap() > now);
            }
            let effective = instance.effective_priority();
            prop_assert!(effective >= 1);
            if priority == 255 {
                prop_assert_eq!(effective, 255);
            } else {
                prop_assert!(effective <= 254);
            }
        }
    }
}

// --- Sync groups -----------------------------------------------------------

fn sync_member() -> Instance {
    started(InstanceParams {
        sync_group: true,
        ..params(Version::V2, 100)
    })
}

#[test]
fn sync_member_waits_for_the_group_when_its_down_timer_expires() {
    let mut instance = sync_member();
    let actions = instance.handle(Input::Timer, at(MDI_100));
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert_eq!(instance.state(), State::Backup);
    assert!(instance.wants_master());
    // The down timer is re-armed, so the engine keeps waking.
    assert_eq!(instance.next_deadline(), Some(at(MDI_100) + MDI_100));

    let actions = instance.handle(Input::SyncMaster, at(MDI_100 + ms(5)));
    assert_eq!(
        transitions(&actions),
        vec![(State::Backup, State::Master, Reason::SyncGroup)]
    );
    assert!(actions.contains(&Action::AddVips));
    assert!(!instance.wants_master());
}

#[test]
fn an_advert_that_holds_the_member_in_backup_withdraws_its_wish() {
    let mut instance = sync_member();
    instance.handle(Input::Timer, at(MDI_100));
    assert!(instance.wants_master());
    instance.handle(
        advert(HIGHER_ADDR, 150, at(MDI_100 + ms(10))),
        at(MDI_100 + ms(10)),
    );
    assert!(!instance.wants_master());
    // A lower-priority advert with preemption does not hold us: still ready.
    instance.handle(Input::Timer, at(2 * MDI_100 + ms(10)));
    assert!(instance.wants_master());
    instance.handle(
        advert(LOWER_ADDR, 50, at(2 * MDI_100 + ms(20))),
        at(2 * MDI_100 + ms(20)),
    );
    assert!(instance.wants_master());
}

#[test]
fn sync_backup_moves_a_master_member_to_backup_without_a_stop_advert() {
    let mut instance = started(InstanceParams {
        sync_group: true,
        initial_state_master: true,
        ..params(Version::V2, 255)
    });
    assert_eq!(instance.state(), State::Master);
    let actions = instance.handle(Input::SyncBackup, at(SECOND));
    assert_eq!(
        transitions(&actions),
        vec![(State::Master, State::Backup, Reason::SyncGroup)]
    );
    assert!(actions.contains(&Action::RemoveVips));
    assert!(!actions.contains(&Action::SendAdvert { priority: 0 }));
    // Members already in the wanted state ignore the group's inputs.
    assert!(instance
        .handle(Input::SyncBackup, at(2 * SECOND))
        .is_empty());
}

#[test]
fn sync_inputs_do_nothing_in_fault() {
    let mut instance = sync_member();
    instance.handle(Input::Fault(true), at(SECOND));
    assert!(instance
        .handle(Input::SyncMaster, at(2 * SECOND))
        .is_empty());
    assert!(instance
        .handle(Input::SyncBackup, at(2 * SECOND))
        .is_empty());
    assert_eq!(instance.state(), State::Fault);
}
