// Gradio's status trackers time a pending event with a requestAnimationFrame loop that stops
// when the status leaves "pending". Gradio 6.31 removes the app-level loading tracker while its
// status is still pending, so that loop runs for ever: 60 callbacks a second on an idle page,
// each asking the browser for a new frame (Chromium, 2-core EPYC: 0.08 of a core while nobody
// touches the page, 0.01 with this script; a laptop's battery and a click's decode pay for it).
//
// This throttles the frames asked for by Gradio's status tracker module to 10 a second, through
// timers: its timer shows tenths of a second, so a live tracker looks the same, and a removed
// one no longer makes the browser draw. Every other caller gets the browser's own
// requestAnimationFrame. The caller is the first frame of the call stack that names a script
// file (Chromium's and Firefox's stack formats alike); a Gradio whose chunk has another name is
// left alone.
(() => {
  const nativeRequest = window.requestAnimationFrame.bind(window);
  const nativeCancel = window.cancelAnimationFrame.bind(window);
  const TRACKER = /\/statustracker[-.][^/]*\.js/;
  const SCRIPT = /\.m?js[?:#]/;
  const INTERVAL_MS = 100;

  function callerIsTracker() {
    const stack = new Error().stack || '';
    const caller = stack.split('\n').find((line) => SCRIPT.test(line));
    return caller !== undefined && TRACKER.test(caller);
  }

  window.requestAnimationFrame = function requestAnimationFrame(callback) {
    if (!callerIsTracker()) return nativeRequest(callback);
    window.__samwb_throttled_frames = (window.__samwb_throttled_frames || 0) + 1;
    return -setTimeout(() => callback(performance.now()), INTERVAL_MS);  // negative: a timer
  };
  window.cancelAnimationFrame = function cancelAnimationFrame(id) {
    if (id < 0) clearTimeout(-id); else nativeCancel(id);
  };
})();
