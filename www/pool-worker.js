// One thread of the threaded engine build (www/threads.js starts it): instantiates
// the engine's module on the shared memory it is sent, then joins the pool and
// computes its share of every product until the page goes away.
self.onmessage = async ({ data }) => {
  try {
    const P = await import(data.glue);
    await P.default({ module_or_path: data.module, memory: data.memory });
    P.poolWorker(); // returns only with an error
  } catch (e) {
    self.postMessage({ type: "error", message: e && e.message ? e.message : String(e) });
  }
};
