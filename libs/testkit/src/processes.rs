//! Datastores a fault test owns: a Redis server it can kill, restart and
//! pause without touching the shared one.
use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A `redis-server` on a free port, killed when dropped.
pub struct RedisProcess {
    pub port: u16,
    child: Option<Child>,
}

impl RedisProcess {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Self { port, child: None };
        r.restart().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let url = self.url();
        crate::wait_for("the test's redis-server to answer", Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url.as_str()).ok()?;
                let mut con = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut con).await.ok().map(drop)
            }
        })
        .await;
    }

    /// SIGKILL: gone at once, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `CLIENT PAUSE` for `ms`: every client's commands wait.
    pub async fn pause(&self, ms: u64) {
        let client = redis::Client::open(self.url().as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("ALL").query_async(&mut con).await.unwrap();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
