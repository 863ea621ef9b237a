// VMware's own webmks client (wmks.js from the HTML Console SDK, npm opennebula-wmks) in headless chromium,
// driven by t/43-wmks.t: node t/wmks/driver.mjs WSS_URL. Commands arrive on stdin, one JSON object a line;
// each gets one JSON line on stdout ({"ok": true, ...} or {"ok": false, "error": ...}). The page's console
// goes to stderr.
//
//   {"cmd": "connect"}                 connects and waits for wmks's "connected" state
//   {"cmd": "state"}                   the connection state and what wmks negotiated
//   {"cmd": "dump", "file": PATH}      writes the console canvas as a binary PPM
//   {"cmd": "type", "text": TEXT}      wmks.sendInputString(TEXT)
//   {"cmd": "keys", "codes": [...]}    wmks.sendKeyCodes(codes): JavaScript key codes (13 is Enter)
//   {"cmd": "quit"}
//
// Chromium gets no network beyond loopback: every host name but 127.0.0.1 fails to resolve, no proxy.
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, '..', '..', 'build', 'wmks', 'node_modules');
const { chromium } = createRequire(path.join(modules, 'x.js'))('playwright-core');
const url = process.argv[2];
const executablePath = process.env.NATIVEVNC_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 30000;

const browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: TIMEOUT,
    args: [
        '--ignore-certificate-errors',
        '--no-sandbox',
        '--no-proxy-server',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--disable-background-networking',
    ],
});
const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
// The ticket is a credential: it is cut out of whatever the page logs (Chromium names failed WebSocket URLs).
const log = (line) => process.stderr.write(`${line.replace(/\/ticket\/[^\s'"]+/g, '/ticket/...')}\n`);
page.on('console', (m) => log(`page ${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => log(`page error: ${e.message}`));
await page.setContent(readFileSync(path.join(here, 'page.html'), 'utf8'));
// wmks.js is an ES module that bundles jQuery and jQuery UI; its default export is WMKS.
const wmks = readFileSync(path.join(modules, 'opennebula-wmks', 'dist', 'wmks.js'), 'utf8');
await page.addScriptTag({ type: 'module', content: `${wmks}\nwindow.WMKS = WMKS$1;\n` });
await page.waitForFunction(() => window.WMKS, null, { timeout: TIMEOUT });

const commands = {
    async connect() {
        await page.evaluate((wssUrl) => {
            // The legacy keyboard manager (disableVscanKeyboard) maps text to VMWKeyEvent scancodes itself;
            // the default "vscan" one drops sendInputString.
            const console = window.WMKS.createWMKS('console', {
                rescale: false,
                changeResolution: false,
                disableVscanKeyboard: true,
            });
            window.wmksState = 'created';
            console.register(window.WMKS.CONST.Events.CONNECTION_STATE_CHANGE, (event, data) => {
                window.wmksState = data.state;
            });
            console.register(window.WMKS.CONST.Events.ERROR, (event, data) => {
                window.wmksError = String(data.errorType);
            });
            window.wmksConsole = console;
            console.connect(wssUrl);
        }, url);
        await page.waitForFunction(() => window.wmksState === 'connected' || window.wmksError, null, {
            timeout: TIMEOUT,
        });
        return commands.state();
    },
    async state() {
        return page.evaluate(() => {
            const decoder = window.wmksConsole.wmksData._vncDecoder;
            return {
                state: window.wmksState,
                error: window.wmksError || null,
                version: window.WMKS.version,
                vmwKeyEvent: decoder.useVMWKeyEvent,
                vmwAck: decoder.useVMWAck,
            };
        });
    },
    async dump({ file }) {
        const { width, height, rgba } = await page.evaluate(() => {
            const canvas = window.wmksConsole.wmksData._canvas[0];
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let binary = '';
            for (let i = 0; i < data.length; i += 0x8000) {
                binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
            }
            return { width: canvas.width, height: canvas.height, rgba: btoa(binary) };
        });
        const pixels = Buffer.from(rgba, 'base64');
        const rgb = Buffer.alloc(width * height * 3);
        for (let p = 0; p < width * height; p++) {
            pixels.copy(rgb, p * 3, p * 4, p * 4 + 3);
        }
        writeFileSync(file, Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), rgb]));
        return { width, height };
    },
    async type({ text }) {
        await page.evaluate((t) => window.wmksConsole.sendInputString(t), text);
        return {};
    },
    async keys({ codes }) {
        await page.evaluate((c) => window.wmksConsole.sendKeyCodes(c), codes);
        return {};
    },
};

const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.cmd === 'quit') break;
    try {
        const command = commands[request.cmd];
        if (!command) throw new Error(`unknown command ${request.cmd}`);
        reply({ ok: true, ...(await command(request)) });
    } catch (e) {
        reply({ ok: false, error: e.message });
    }
}
await browser.close();
reply({ ok: true });
