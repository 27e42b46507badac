// The entry of the bundled CLI (dist/img.js, which bin/img.js loads, and the
// single binary): enter the user namespace through img-launch first when the
// command needs it and nobody did (./launch.ts), then load the rest of img.
import { launchIfNeeded } from './launch';

launchIfNeeded();
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('./main') as typeof import('./main')).run();
