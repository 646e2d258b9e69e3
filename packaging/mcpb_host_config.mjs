// What a host does with an unpacked bundle's manifest, done by the MCPB reference library itself
// (@anthropic-ai/mcpb's getMcpConfigForManifest: defaults, the user's values, ${__dirname}, ${HOME}, …, and
// ${user_config.KEY} substitution; a value with neither is left as its literal placeholder).
//
//   node packaging/mcpb_host_config.mjs MCPB_LIB_DIR EXTENSION_DIR '{"provider": "sandbox"}'
//
// Prints the resolved {command, args, env} as JSON. MCPB_LIB_DIR is the npm prefix @anthropic-ai/mcpb is
// installed in (packaging/check.sh pins the version).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, sep } from "node:path";
import { pathToFileURL } from "node:url";

const [libDir, extensionPath, userConfigJson] = process.argv.slice(2);
const lib = await import(pathToFileURL(join(libDir, "node_modules", "@anthropic-ai", "mcpb", "dist", "index.js")));
const manifest = JSON.parse(readFileSync(join(extensionPath, "manifest.json"), "utf8"));
const home = homedir();
const config = await lib.getMcpConfigForManifest({
  manifest,
  extensionPath,
  systemDirs: { HOME: home, DESKTOP: join(home, "Desktop"), DOCUMENTS: join(home, "Documents"),
    DOWNLOADS: join(home, "Downloads") },
  userConfig: JSON.parse(userConfigJson || "{}"),
  pathSeparator: sep,
});
if (!config) {
  console.error("the host would not start it: required settings are missing");
  process.exit(1);
}
console.log(JSON.stringify(config));
