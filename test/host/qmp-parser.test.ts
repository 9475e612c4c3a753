// QmpParser: bytes in, QMP messages out, however the bytes are cut.
import test from 'ava';
import { QmpParser, type QmpMessage } from '../../qemu/qmp.js';

const greeting = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}\r\n';
const ret = '{"return": {"status": "running", "running": true}, "id": "kniv-2"}\r\n';
const err = '{"id": "kniv-3", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}\r\n';
const event = '{"timestamp": {"seconds": 1700000000, "microseconds": 42}, "event": "STOP"}\r\n';
const stream = greeting + ret + event + err;

const expected: QmpMessage[] = [
  { kind: 'greeting', greeting: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian' }, capabilities: ['oob'] } },
  { kind: 'return', id: 'kniv-2', value: { status: 'running', running: true } },
  { kind: 'event', event: 'STOP', data: {}, timestamp: { seconds: 1700000000, microseconds: 42 } },
  { kind: 'error', id: 'kniv-3', errorClass: 'CommandNotFound', desc: 'The command nope has not been found' },
];

test('all messages in one chunk', (t) => {
  const p = new QmpParser();
  t.deepEqual(p.feed(Buffer.from(stream)), expected);
  t.deepEqual(p.end(), []);
});

test('one byte at a time gives the same messages, each as soon as its line ends', (t) => {
  const p = new QmpParser();
  const got: QmpMessage[] = [];
  const bytes = Buffer.from(stream);
  for (let i = 0; i < bytes.length; i++) {
    const out = p.feed(bytes.subarray(i, i + 1));
    if (out.length > 0) t.is(bytes[i], 0x0a, 'a message appears exactly when its newline arrives');
    got.push(...out);
  }
  t.deepEqual(got, expected);
});

test('every split point of the stream gives the same messages', (t) => {
  const bytes = Buffer.from(stream);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const p = new QmpParser();
    t.deepEqual([...p.feed(bytes.subarray(0, cut)), ...p.feed(bytes.subarray(cut)), ...p.end()], expected, `cut at ${cut}`);
  }
});

test('a multi-byte UTF-8 character split across chunks survives', (t) => {
  const line = Buffer.from('{"event": "X", "data": {"s": "é€"}, "timestamp": {"seconds": 1, "microseconds": 2}}\n');
  const at = line.indexOf(Buffer.from('€')) + 1;
  const p = new QmpParser();
  const out = [...p.feed(line.subarray(0, at)), ...p.feed(line.subarray(at))];
  t.deepEqual(out, [{ kind: 'event', event: 'X', data: { s: 'é€' }, timestamp: { seconds: 1, microseconds: 2 } }]);
});

test('garbage lines are reported and the stream carries on', (t) => {
  const p = new QmpParser();
  const out = p.feed(Buffer.from(`${greeting}not json at all\r\n[1,2]\r\n{"hello": 1}\r\n\r\n${ret}`));
  t.deepEqual(
    out.map((m) => (m.kind === 'invalid' ? `${m.kind}: ${m.line} (${m.reason.split(':')[0]})` : m.kind)),
    [
      'greeting',
      'invalid: not json at all (not JSON)',
      'invalid: [1,2] (not a JSON object)',
      'invalid: {"hello": 1} (a JSON object that is no greeting, answer or event)',
      'return',
    ],
  );
});

test('a last line without a newline is delivered at end()', (t) => {
  const p = new QmpParser();
  t.deepEqual(p.feed(Buffer.from(ret.trimEnd())), []);
  t.deepEqual(p.end(), [expected[1]]);
  t.deepEqual(p.end(), [], 'nothing twice');
});

test('an overlong line is skipped with a report, without buffering it, and parsing resumes', (t) => {
  const p = new QmpParser(100);
  const out = [
    ...p.feed(Buffer.from(`{"event": "${'x'.repeat(50)}`)),
    ...p.feed(Buffer.from('y'.repeat(100))),
    ...p.feed(Buffer.from(`"}\r\n${event}`)),
  ];
  t.is(out.length, 2);
  t.like(out[0], { kind: 'invalid' });
  t.regex((out[0] as { reason: string }).reason, /a line of more than 100 bytes/);
  t.deepEqual(out[1], expected[2]);
});

test('events carry their data; answers without an id keep it undefined', (t) => {
  const p = new QmpParser();
  t.deepEqual(p.feed(Buffer.from('{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}, "timestamp": {"seconds": 5, "microseconds": 6}}\n{"return": {}}\n')), [
    { kind: 'event', event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' }, timestamp: { seconds: 5, microseconds: 6 } },
    { kind: 'return', id: undefined, value: {} },
  ]);
});
