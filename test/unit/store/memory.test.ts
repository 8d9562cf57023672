import { createMemoryStore } from "../../../src/store/memory.ts";
import { testStoreContract } from "./contract.ts";

testStoreContract("memory", async () => createMemoryStore());
