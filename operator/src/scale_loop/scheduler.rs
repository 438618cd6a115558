//! One scheduler for every scaled object: a single timer heap, not a task per object.
//!
//! Each object is polled at once when it is scheduled (or its spec changes), then again one
//! polling interval after its previous poll *started*, or right after that poll ended when it
//! took longer than the interval: KEDA's loop (`startScaleLoop` in
//! `pkg/scaling/scale_handler.go`) starts its interval timer before it checks the scalers.
//! Polls run concurrently up to a global bound; an object is never polled twice at the same
//! time. A slow object delays only itself: its next poll waits for its own previous one.
//!
//! A push scaler can [`Scheduler::wake`] an object: it is polled as soon as it is not being
//! polled, and its regular cadence is kept (a stream of pushes never postpones the poll that
//! checks for deactivation).
//!
//! Several kinds of object share the scheduler: each kind registers its own [`Poller`] with
//! [`Scheduler::add_poller`] and gets a handle whose keys are kept apart from the other
//! kinds' (a ScaledObject and a ScaledJob may share a name).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Namespace and name of a scaled object.
pub type ObjectKey = (String, String);

/// Does one poll of one object. `due` is when the poll should have started, for lag metrics.
pub trait Poller: Send + Sync + 'static {
    fn poll(&self, key: ObjectKey, due: Instant) -> impl Future<Output = ()> + Send;
}

/// A poller behind a trait object, so pollers of different kinds share one scheduler.
trait DynPoller: Send + Sync {
    fn poll(&self, key: ObjectKey, due: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

struct Erased<P>(Arc<P>);

impl<P: Poller> DynPoller for Erased<P> {
    fn poll(&self, key: ObjectKey, due: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let poller = self.0.clone();
        Box::pin(async move { poller.poll(key, due).await })
    }
}

/// A kind's pollers index and one of its objects.
type LaneKey = (usize, ObjectKey);

enum Command {
    /// A kind's lane and its poller.
    AddPoller(usize, Arc<dyn DynPoller>),
    /// Poll every `interval`; `restart` polls at once and forgets the previous schedule.
    Schedule {
        key: LaneKey,
        interval: Duration,
        restart: bool,
    },
    /// Poll once as soon as possible, keeping the regular schedule.
    Wake(LaneKey),
    Remove(LaneKey),
    /// Start no more polls; answer once the polls in flight have ended.
    Drain(oneshot::Sender<()>),
    Done {
        key: LaneKey,
        epoch: u64,
        /// The poll was the regular one (not only a wake), so the next is one interval on.
        regular: bool,
    },
}

struct Entry {
    interval: Duration,
    /// Bumped on every restart; heap items and completions of older epochs are ignored.
    epoch: u64,
    in_flight: bool,
    /// When the poll in flight (or the last one) was started.
    started: Instant,
    /// When the next regular poll is due.
    due: Instant,
    /// A wake not yet served by a poll.
    woken: bool,
}

/// A handle to the scheduler task for one kind of object; cloning shares it.
#[derive(Clone)]
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
    /// Which registered poller this handle's keys go to.
    lane: usize,
    /// How many pollers are registered (shared by every handle).
    lanes: Arc<AtomicUsize>,
}

impl Scheduler {
    /// Starts the scheduler task with at most `max_concurrent` polls at a time (across every
    /// kind), and returns the handle for `poller`'s kind.
    pub fn spawn<P: Poller>(poller: Arc<P>, max_concurrent: usize) -> (Self, JoinHandle<()>) {
        let (scheduler, unstarted) = Scheduler::unstarted(max_concurrent);
        scheduler.set_poller(poller);
        (scheduler, unstarted.start())
    }

    /// A scheduler whose task runs only once [`Unstarted::start`] is called, and the handle for
    /// its first kind of object. The handles exist before the pollers, so they can go into
    /// what the pollers themselves read (the operator's context, a controller); each kind's
    /// poller is then given with [`Scheduler::set_poller`]. Commands sent before the start
    /// wait, in order.
    pub fn unstarted(max_concurrent: usize) -> (Self, Unstarted) {
        let (tx, rx) = mpsc::unbounded_channel();
        let scheduler = Scheduler {
            commands: tx.clone(),
            lane: 0,
            lanes: Arc::new(AtomicUsize::new(1)),
        };
        let unstarted = Unstarted {
            commands: tx,
            receiver: rx,
            max_concurrent: max_concurrent.max(1),
        };
        (scheduler, unstarted)
    }

    /// Registers the poller of another kind of object and returns the handle for it. Its
    /// polls share the same timer heap and concurrency bound.
    pub fn add_poller<P: Poller>(&self, poller: Arc<P>) -> Scheduler {
        let lane = self.lane();
        lane.set_poller(poller);
        lane
    }

    /// The handle for another kind of object, whose poller is given later with
    /// [`Scheduler::set_poller`] (before any of its objects is scheduled).
    pub fn lane(&self) -> Scheduler {
        Scheduler {
            commands: self.commands.clone(),
            lane: self.lanes.fetch_add(1, Ordering::SeqCst),
            lanes: self.lanes.clone(),
        }
    }

    /// Gives this handle's kind its poller. Commands are handled in order, so the poller is
    /// known before any key sent after this.
    pub fn set_poller<P: Poller>(&self, poller: Arc<P>) {
        let _ = self
            .commands
            .send(Command::AddPoller(self.lane, Arc::new(Erased(poller))));
    }

    /// Adds or updates an object. A new object, or `restart`, is polled at once.
    pub fn schedule(&self, key: ObjectKey, interval: Duration, restart: bool) {
        let _ = self.commands.send(Command::Schedule {
            key: (self.lane, key),
            interval,
            restart,
        });
    }

    /// Polls a scheduled object once as soon as it is not being polled, without moving its
    /// regular polls. Unknown objects are ignored.
    pub fn wake(&self, key: ObjectKey) {
        let _ = self.commands.send(Command::Wake((self.lane, key)));
    }

    pub fn remove(&self, key: ObjectKey) {
        let _ = self.commands.send(Command::Remove((self.lane, key)));
    }

    /// Stops the scale loop for every kind: no poll starts after this, and the returned future
    /// ends when the polls in flight have ended (their writes included). The scheduler task
    /// then ends.
    pub fn drain(&self) -> impl Future<Output = ()> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.commands.send(Command::Drain(tx)).is_ok();
        async move {
            if sent {
                let _ = rx.await;
            }
        }
    }
}

/// A scheduler not running yet (see [`Scheduler::unstarted`]); dropping it drops the commands.
pub struct Unstarted {
    commands: mpsc::UnboundedSender<Command>,
    receiver: mpsc::UnboundedReceiver<Command>,
    max_concurrent: usize,
}

impl Unstarted {
    /// Starts the scheduler task; it handles the commands sent so far, then the rest.
    pub fn start(self) -> JoinHandle<()> {
        tokio::spawn(run(self.receiver, self.commands, self.max_concurrent))
    }
}

async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    done_tx: mpsc::UnboundedSender<Command>,
    max_concurrent: usize,
) {
    let mut pollers: Vec<Option<Arc<dyn DynPoller>>> = Vec::new();
    let permits = Arc::new(Semaphore::new(max_concurrent));
    let mut entries: HashMap<LaneKey, Entry> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(Instant, u64, LaneKey)>> = BinaryHeap::new();
    let mut next_epoch = 0u64;
    let mut in_flight = 0usize;
    let mut drained: Vec<oneshot::Sender<()>> = Vec::new();
    let mut draining = false;
    loop {
        if draining && in_flight == 0 {
            for waiter in drained {
                let _ = waiter.send(());
            }
            return;
        }
        // While draining nothing new starts: the heap is not looked at again.
        let next_due = heap
            .peek()
            .map(|Reverse((due, _, _))| *due)
            .filter(|_| !draining);
        let sleep = async {
            match next_due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                match command {
                    Command::AddPoller(lane, poller) => {
                        if pollers.len() <= lane {
                            pollers.resize(lane + 1, None);
                        }
                        pollers[lane] = Some(poller);
                    }
                    Command::Schedule { key, interval, restart } => {
                        let now = Instant::now();
                        let is_new = !entries.contains_key(&key);
                        let entry = entries.entry(key.clone()).or_insert(Entry {
                            interval,
                            epoch: 0,
                            in_flight: false,
                            started: now,
                            due: now,
                            woken: false,
                        });
                        entry.interval = interval;
                        if is_new || restart {
                            next_epoch += 1;
                            entry.epoch = next_epoch;
                            entry.due = now;
                            if !entry.in_flight {
                                heap.push(Reverse((now, entry.epoch, key)));
                            }
                        }
                    }
                    Command::Wake(key) => {
                        if let Some(entry) = entries.get_mut(&key) {
                            entry.woken = true;
                            // While a poll runs, its completion serves the wake.
                            if !entry.in_flight {
                                heap.push(Reverse((Instant::now(), entry.epoch, key)));
                            }
                        }
                    }
                    Command::Remove(key) => {
                        entries.remove(&key);
                    }
                    Command::Drain(waiter) => {
                        draining = true;
                        drained.push(waiter);
                    }
                    Command::Done { key, epoch, regular } => {
                        in_flight = in_flight.saturating_sub(1);
                        if let Some(entry) = entries.get_mut(&key) {
                            let now = Instant::now();
                            entry.in_flight = false;
                            // A restart during the poll set `due` to its own time (poll again
                            // at once); a regular poll sets the next one interval after its
                            // start, or now when it took longer than that.
                            if entry.epoch == epoch && regular {
                                entry.due = (entry.started + entry.interval).max(now);
                            }
                            heap.push(Reverse((entry.due, entry.epoch, key.clone())));
                            if entry.woken {
                                heap.push(Reverse((now, entry.epoch, key)));
                            }
                        }
                    }
                }
            }
            _ = sleep => {
                let now = Instant::now();
                while let Some(Reverse((due, epoch, _))) = heap.peek() {
                    if *due > now {
                        break;
                    }
                    let (due, epoch, key) = (*due, *epoch, heap.pop().map(|Reverse(item)| item.2));
                    let Some(key) = key else { break };
                    let Some(entry) = entries.get_mut(&key) else { continue };
                    if entry.epoch != epoch || entry.in_flight {
                        continue;
                    }
                    // The heap may hold duplicates (a wake next to the regular item): poll
                    // only when the regular poll is due or a wake is pending.
                    let regular = entry.due <= now;
                    if !regular && !entry.woken {
                        continue;
                    }
                    let Some(poller) = pollers.get(key.0).cloned().flatten() else { continue };
                    entry.in_flight = true;
                    entry.started = now;
                    entry.woken = false;
                    in_flight += 1;
                    let permits = permits.clone();
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let permit = permits.clone().acquire_owned().await.ok();
                        let slot = Arc::new(PollSlot {
                            slots: permits,
                            permit: std::sync::Mutex::new(permit),
                        });
                        POLL_SLOT.scope(slot, poller.poll(key.1.clone(), due)).await;
                        let _ = done.send(Command::Done { key, epoch, regular });
                    });
                }
            }
        }
    }
}

tokio::task_local! {
    /// The slot of the poll this task runs, so that a read waiting for its source can give it
    /// back until its turn comes.
    static POLL_SLOT: Arc<PollSlot>;
}

/// One poll's share of the global bound.
struct PollSlot {
    slots: Arc<Semaphore>,
    permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl PollSlot {
    fn permit(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        self.permit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn give_back(&self) {
        self.permit().take();
    }

    async fn take_again(&self) {
        if self.permit().is_some() {
            return;
        }
        let permit = self.slots.clone().acquire_owned().await.ok();
        let mut held = self.permit();
        // Another read of the same poll may have taken one meanwhile: keep one.
        if held.is_none() {
            *held = permit;
        }
    }
}

/// Limits concurrent reads per metric source (a server), so one slow source cannot take every
/// poll slot: a read that has to wait for its source gives its poll's slot back while it
/// waits (a source that never answers holds at most `per_source` slots, however many objects
/// read it), and takes one again before it reads. Within one poll whose reads run
/// concurrently, a read may go on while another waits without a slot: the bound is on work,
/// and is exceeded by at most that.
#[derive(Debug, Clone)]
pub struct SourceLimiter {
    per_source: usize,
    sources: Arc<std::sync::Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl SourceLimiter {
    pub fn new(per_source: usize) -> Self {
        SourceLimiter {
            per_source: per_source.max(1),
            sources: Default::default(),
        }
    }

    /// Runs `read` once a slot for `source` is free.
    pub async fn run<T>(&self, source: &str, read: impl Future<Output = T>) -> T {
        let semaphore = {
            let mut sources = self
                .sources
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            sources
                .entry(source.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_source)))
                .clone()
        };
        let _permit = match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                // Outside a scheduled poll (the metrics API's reads) there is no slot to give.
                let slot = POLL_SLOT.try_with(Arc::clone).ok();
                if let Some(slot) = &slot {
                    slot.give_back();
                }
                let permit = semaphore.acquire_owned().await.ok();
                if let Some(slot) = &slot {
                    slot.take_again().await;
                }
                permit
            }
        };
        read.await
    }
}

#[cfg(test)]
mod tests;
