#!/usr/bin/env node
import('../dist/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
      console.error('runlog: the server is not built; run `npm run build` first');
    } else {
      console.error(`runlog: ${err && err.message ? err.message : err}`);
    }
    process.exit(1);
  });
