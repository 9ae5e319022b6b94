//! Graceful shutdown: a signal every connection watches, and a count of the ones still open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Debug, Clone)]
pub struct Drain {
    signal: watch::Receiver<bool>,
    open: Arc<(AtomicUsize, Notify)>,
}

/// Starts the drain.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
    open: Arc<(AtomicUsize, Notify)>,
}

/// Held by each open connection.
#[derive(Debug)]
pub struct Guard(Arc<(AtomicUsize, Notify)>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

pub fn new() -> (Trigger, Drain) {
    let (tx, rx) = watch::channel(false);
    let open = Arc::new((AtomicUsize::new(0), Notify::new()));
    (
        Trigger {
            tx,
            open: open.clone(),
        },
        Drain { signal: rx, open },
    )
}

impl Drain {
    pub fn guard(&self) -> Guard {
        self.open.0.fetch_add(1, Ordering::AcqRel);
        Guard(self.open.clone())
    }

    /// How many connections are open now.
    pub fn open(&self) -> usize {
        self.open.0.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves when the drain starts.
    pub async fn signaled(&self) {
        let mut rx = self.signal.clone();
        let _ = rx.wait_for(|d| *d).await;
    }
}

impl Trigger {
    /// Signals every connection, then waits until all are closed or `deadline` passes.
    /// Returns how many were still open at the deadline.
    pub async fn drain(&self, deadline: Duration) -> usize {
        let _ = self.tx.send(true);
        let wait = async {
            loop {
                let notified = self.open.1.notified();
                if self.open.0.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
        self.open.0.load(Ordering::Acquire)
    }
}
