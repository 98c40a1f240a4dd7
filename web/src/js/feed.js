// The live feed (GET /feed, Server-Sent Events) read with fetch so that the bearer
// token goes in a header and the resume point in Last-Event-ID: after a dropped
// connection the server replays every event after the last one seen, none is lost.
import { accessToken, refresh } from "./api.js";

export class Feed {
  constructor({ onEvent, onState }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
    this.delay = 500;
    // resolved once the server has said where the stream starts (its first, data-less event)
    this.ready = new Promise((ok) => { this.markReady = ok; });
  }

  start() { this.stopped = false; this.loop(); }

  stop() { this.stopped = true; this.controller?.abort(); }

  async loop() {
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const headers = { Authorization: `Bearer ${await accessToken()}`, Accept: "text/event-stream" };
        if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
        const r = await fetch("/feed", { headers, signal: this.controller.signal, cache: "no-store" });
        if (r.status === 401) { await refresh(); continue; }
        if (!r.ok) throw new Error(`feed: HTTP ${r.status}`);
        this.onState("live");
        this.delay = 500;
        await this.read(r.body);
      } catch (e) {
        if (this.stopped) return;
        if (e && e.status === 401) { this.onState("expired"); return; }
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      await new Promise((ok) => setTimeout(ok, this.delay * (0.5 + Math.random())));
      this.delay = Math.min(this.delay * 2, 5_000);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.dispatch(block);
      }
    }
  }

  dispatch(block) {
    let id = null, data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null) { this.lastId = id; this.markReady(); }
    if (data.length) this.onEvent(JSON.parse(data.join("\n")));
  }
}
