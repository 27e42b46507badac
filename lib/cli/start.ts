// The entry of the bundled CLI (dist/img.js, which bin/img.js loads, and the
// single binary): enter the user namespace through img-launch first when the
// command needs it and nobody did (./launch.ts), then run img.
import { launchIfNeeded } from './launch';
import { run } from './main';

launchIfNeeded();
run();
