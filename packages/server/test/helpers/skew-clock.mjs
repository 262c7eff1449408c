// Preloaded into a server process (NODE_OPTIONS=--import) to run its wall clock SKEW_MS off.
const real = Date.now;
const offset = Number(process.env.SKEW_MS ?? 0);
Date.now = () => real() + offset;
