/** The linux-arm64 executable under qemu-user (`.ci/setup-arm64` installs it): the core of the suite. */
import { arm64Platform } from "./platforms.ts";
import { platformSuite } from "./suite.ts";

platformSuite(arm64Platform(), { full: false });
