import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { RealtimeClient } from './realtime';

/** The part of a browser's WebSocket the client uses, driven by the test. */
class FakeSocket {
  static last: FakeSocket | undefined;
  static readonly OPEN = 1;
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor() {
    FakeSocket.last = this;
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {}
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  receive(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

beforeEach(() => {
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

it('tells when the server confirmed a subscription, not when it was asked for', () => {
  const client = new RealtimeClient(() => 'ws://runlog.test/api/v1/ws');
  const confirmed: [string[], number][] = [];
  client.onSubscribed((topics, at) => confirmed.push([topics, at]));
  client.start();
  vi.setSystemTime(1_000);
  client.subscribe('run:r1');
  const socket = FakeSocket.last!;
  socket.open();
  expect(socket.sent).toEqual(['{"type":"subscribe","topics":["run:r1"]}']);
  // a page's data read at 1,500 came after the subscribe went out, but the server may have
  // served it before it took the subscription: an update between the two reached neither,
  // so the data counts as older than the confirmation and is read again
  vi.setSystemTime(2_000);
  socket.receive({ type: 'subscribed', topics: ['run:r1'] });
  expect(confirmed).toEqual([[['run:r1'], 2_000]]);
  client.stop();
});
