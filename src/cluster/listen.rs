//! LISTEN for a pool of several servers: its subscriptions live with its first server's pool,
//! and the listening connection goes to a primary of the host list (`Intent::Listen`), whatever
//! `target_session_attrs` says: NOTIFY runs only on a primary, and a standby refuses LISTEN.
//! When that primary goes away the connection is lost, and the one that replaces it goes to the
//! primary then (after a failover, the promoted standby).

use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use super::{Cluster, Intent};
use crate::conn::Conn;
use crate::error::{CoreError, CoreResult};
use crate::pool::{ListenVia, Pool};

struct ViaCluster(Weak<Cluster>);

impl ListenVia for ViaCluster {
  fn acquire(&self) -> BoxFuture<'static, CoreResult<(Arc<Pool>, Conn)>> {
    let cluster = self.0.upgrade();
    Box::pin(async move {
      match cluster {
        Some(cluster) => cluster.acquire(Intent::Listen).await,
        None => Err(CoreError::PoolClosed("the pool has been ended".into())),
      }
    })
  }
}

impl Cluster {
  /// The pool that holds this pool's subscriptions (`Pool::subscribe`).
  pub fn listener(&self) -> &Arc<Pool> {
    &self.members[0].pool
  }

  /// Called once the cluster exists: its listening connection comes from a primary it picks.
  pub(super) fn listen_through_me(&self) {
    self.listener().listen_via(Arc::new(ViaCluster(self.me.clone())));
  }
}
