use std::sync::Mutex;

use super::*;

/// Records (key, start time, due time); each poll of `slow` objects takes `slow_for`.
#[derive(Default)]
struct Recorder {
    polls: Mutex<Vec<(String, Duration, Duration)>>,
    slow: Vec<String>,
    slow_for: Duration,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<usize>,
    start: Option<Instant>,
}

impl Recorder {
    fn new(start: Instant) -> Self {
        Recorder {
            start: Some(start),
            ..Default::default()
        }
    }

    fn times(&self, name: &str) -> Vec<u64> {
        self.polls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, at, _)| at.as_secs())
            .collect()
    }
}

impl Poller for Recorder {
    async fn poll(&self, key: ObjectKey, due: Instant) {
        let start = self.start.unwrap();
        let name = key.1.clone();
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(name.clone()).or_default();
            *n += 1;
            assert_eq!(*n, 1, "{name} polled twice at the same time");
            let total: usize = in_flight.values().sum();
            let mut max = self.max_in_flight.lock().unwrap();
            *max = (*max).max(total);
        }
        self.polls
            .lock()
            .unwrap()
            .push((name.clone(), Instant::now() - start, due - start));
        if self.slow.contains(&name) {
            tokio::time::sleep(self.slow_for).await;
        }
        *self.in_flight.lock().unwrap().get_mut(&name).unwrap() -= 1;
    }
}

fn key(name: &str) -> ObjectKey {
    ("ns".to_string(), name.to_string())
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_poll_is_immediate_then_one_every_interval() {
    let recorder = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(5), false);
    tokio::time::sleep(Duration::from_millis(12_500)).await;
    settle().await;
    assert_eq!(recorder.times("a"), [0, 5, 10]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_polls_at_once_and_rebases_the_schedule() {
    let recorder = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(5), false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    scheduler.schedule(key("a"), Duration::from_secs(5), true);
    // Scheduling again without restart changes nothing.
    scheduler.schedule(key("a"), Duration::from_secs(5), false);
    tokio::time::sleep(Duration::from_millis(8_500)).await;
    settle().await;
    assert_eq!(recorder.times("a"), [0, 2, 7]);
}

#[tokio::test(start_paused = true)]
async fn a_removed_object_is_not_polled_again() {
    let recorder = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(1), false);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    scheduler.remove(key("a"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(recorder.times("a"), [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_object_delays_only_itself() {
    let mut recorder = Recorder::new(Instant::now());
    recorder.slow = vec!["slow".into()];
    recorder.slow_for = Duration::from_secs(30);
    let recorder = Arc::new(recorder);
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("slow"), Duration::from_secs(5), false);
    scheduler.schedule(key("fast"), Duration::from_secs(1), false);
    tokio::time::sleep(Duration::from_millis(36_500)).await;
    settle().await;
    assert_eq!(
        recorder.times("slow"),
        [0, 30],
        "a poll longer than the interval is followed at once by the next"
    );
    assert_eq!(recorder.times("fast"), (0..=36).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn the_cadence_is_kept_from_each_poll_start_whatever_the_poll_takes() {
    let mut recorder = Recorder::new(Instant::now());
    recorder.slow = vec!["a".into()];
    recorder.slow_for = Duration::from_secs(2);
    let recorder = Arc::new(recorder);
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(5), false);
    tokio::time::sleep(Duration::from_millis(15_500)).await;
    settle().await;
    // Not 0, 7, 14: the 2 s each poll takes does not push the next one back.
    assert_eq!(recorder.times("a"), [0, 5, 10, 15]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_during_a_poll_polls_again_right_after_it() {
    let mut recorder = Recorder::new(Instant::now());
    recorder.slow = vec!["a".into()];
    recorder.slow_for = Duration::from_secs(3);
    let recorder = Arc::new(recorder);
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(10), false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    scheduler.schedule(key("a"), Duration::from_secs(10), true);
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    settle().await;
    // Never two at once (the poller asserts it); the restart is honoured when the poll ends.
    assert_eq!(recorder.times("a"), [0, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_wake_polls_at_once_and_keeps_the_regular_cadence() {
    let recorder = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("a"), Duration::from_secs(10), false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    scheduler.wake(key("a"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    scheduler.wake(key("a"));
    tokio::time::sleep(Duration::from_millis(13_500)).await;
    settle().await;
    // The pushes do not postpone the regular polls.
    assert_eq!(recorder.times("a"), [0, 3, 7, 10, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_wake_during_a_poll_polls_again_right_after_it_and_unknown_keys_are_ignored() {
    let mut recorder = Recorder::new(Instant::now());
    recorder.slow = vec!["a".into()];
    recorder.slow_for = Duration::from_secs(3);
    let recorder = Arc::new(recorder);
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.wake(key("unknown"));
    scheduler.schedule(key("a"), Duration::from_secs(20), false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    scheduler.wake(key("a"));
    tokio::time::sleep(Duration::from_millis(22_500)).await;
    settle().await;
    // The first poll ends at 3: the wake is served then; the regular one comes 20 s after the
    // first started.
    assert_eq!(recorder.times("a"), [0, 3, 20]);
    assert!(recorder.times("unknown").is_empty());
}

#[tokio::test(start_paused = true)]
async fn polls_never_exceed_the_global_bound() {
    let mut recorder = Recorder::new(Instant::now());
    recorder.slow = vec!["a".into(), "b".into(), "c".into()];
    recorder.slow_for = Duration::from_secs(2);
    let recorder = Arc::new(recorder);
    let (scheduler, _task) = Scheduler::spawn(recorder.clone(), 2);
    for name in ["a", "b", "c"] {
        scheduler.schedule(key(name), Duration::from_secs(60), false);
    }
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    settle().await;
    assert_eq!(*recorder.max_in_flight.lock().unwrap(), 2);
    let mut firsts: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|n| recorder.times(n)[0])
        .collect();
    firsts.sort();
    assert_eq!(firsts, [0, 0, 2], "the third waits for a slot");
}

#[tokio::test(start_paused = true)]
async fn one_source_is_limited_without_holding_up_another() {
    let limiter = SourceLimiter::new(1);
    let start = Instant::now();
    let slow = |limiter: SourceLimiter, source: &'static str| async move {
        limiter
            .run(source, async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Instant::now() - start
            })
            .await
    };
    let (a1, a2, b) = tokio::join!(
        slow(limiter.clone(), "prometheus-a"),
        slow(limiter.clone(), "prometheus-a"),
        slow(limiter.clone(), "prometheus-b"),
    );
    let mut same = [a1.as_secs(), a2.as_secs()];
    same.sort();
    assert_eq!(same, [1, 2], "the same source runs one read at a time");
    assert_eq!(b.as_secs(), 1, "another source is not held up");
}

/// Reads through a limiter of one read per source; objects named `stuck-*` share a source
/// whose reads take 30 s.
struct ThroughSources {
    limiter: SourceLimiter,
    start: Instant,
    polls: Mutex<Vec<(String, u64)>>,
}

impl Poller for ThroughSources {
    async fn poll(&self, key: ObjectKey, _due: Instant) {
        let name = key.1;
        self.polls
            .lock()
            .unwrap()
            .push((name.clone(), (Instant::now() - self.start).as_secs()));
        let (source, takes) = match name.starts_with("stuck") {
            true => ("stuck".to_string(), Duration::from_secs(30)),
            false => (name.clone(), Duration::from_millis(10)),
        };
        self.limiter.run(&source, tokio::time::sleep(takes)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn objects_queued_on_a_stuck_source_do_not_take_the_poll_slots() {
    let poller = Arc::new(ThroughSources {
        limiter: SourceLimiter::new(1),
        start: Instant::now(),
        polls: Mutex::default(),
    });
    // Twice as many objects on the stuck source as there are poll slots.
    let (scheduler, _task) = Scheduler::spawn(poller.clone(), 4);
    for i in 0..8 {
        scheduler.schedule(key(&format!("stuck-{i}")), Duration::from_secs(1), false);
    }
    settle().await;
    scheduler.schedule(key("healthy"), Duration::from_secs(1), false);
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    settle().await;
    let healthy: Vec<u64> = poller
        .polls
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "healthy")
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(
        healthy,
        [0, 1, 2, 3, 4, 5],
        "the healthy object kept its cadence while 8 polls waited on one stuck source"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_kind_shares_the_scheduler_with_its_own_keys() {
    let objects = Arc::new(Recorder::new(Instant::now()));
    let jobs = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, _task) = Scheduler::spawn(objects.clone(), 10);
    let job_scheduler = scheduler.add_poller(jobs.clone());
    // The same namespace and name in both kinds: two objects, each to its own poller.
    scheduler.schedule(key("same"), Duration::from_secs(5), false);
    job_scheduler.schedule(key("same"), Duration::from_secs(2), false);
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    settle().await;
    assert_eq!(objects.times("same"), [0]);
    assert_eq!(jobs.times("same"), [0, 2, 4]);
    // Removing one kind's key leaves the other's.
    job_scheduler.remove(key("same"));
    tokio::time::sleep(Duration::from_secs(6)).await;
    settle().await;
    assert_eq!(objects.times("same"), [0, 5, 10]);
    assert_eq!(jobs.times("same"), [0, 2, 4]);
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_the_poll_in_flight_and_starts_no_other() {
    let start = Instant::now();
    let recorder = Arc::new(Recorder {
        slow: vec!["slow".to_string()],
        slow_for: Duration::from_secs(3),
        ..Recorder::new(start)
    });
    let (scheduler, task) = Scheduler::spawn(recorder.clone(), 10);
    scheduler.schedule(key("slow"), Duration::from_secs(1), false);
    scheduler.schedule(key("fast"), Duration::from_secs(1), false);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // "slow" is in its first poll (0 s to 3 s); "fast" has polled at 0 s and 1 s.
    let drained = tokio::spawn(scheduler.drain());
    settle().await;
    assert!(
        !drained.is_finished(),
        "drain ended while a poll was in flight"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(
        drained.is_finished(),
        "drain did not end with the last poll"
    );
    assert!(task.is_finished(), "the scheduler task outlived the drain");
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(recorder.times("slow"), [0]);
    assert_eq!(recorder.times("fast"), [0, 1]);
    // A handle used after the drain is harmless.
    scheduler.schedule(key("late"), Duration::from_secs(1), false);
    scheduler.drain().await;
    assert!(recorder.times("late").is_empty());
}

#[tokio::test(start_paused = true)]
async fn handles_made_before_the_pollers_schedule_once_it_starts() {
    let objects = Arc::new(Recorder::new(Instant::now()));
    let jobs = Arc::new(Recorder::new(Instant::now()));
    let (scheduler, unstarted) = Scheduler::unstarted(10);
    let job_scheduler = scheduler.lane();
    // The pollers are given in the other order than the lanes were made.
    job_scheduler.set_poller(jobs.clone());
    scheduler.set_poller(objects.clone());
    scheduler.schedule(key("same"), Duration::from_secs(5), false);
    job_scheduler.schedule(key("same"), Duration::from_secs(2), false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    settle().await;
    assert!(
        objects.times("same").is_empty(),
        "nothing polls before the start"
    );
    let _task = unstarted.start();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    settle().await;
    assert_eq!(objects.times("same"), [3]);
    assert_eq!(jobs.times("same"), [3, 5]);
}
