/** The Windows executable under Wine 10 (`.ci/setup-wine` makes the Debian trixie root it runs in). */
import { windowsPlatform } from "./platforms.ts";
import { platformSuite } from "./suite.ts";

platformSuite(windowsPlatform(), { full: true });
