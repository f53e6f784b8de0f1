import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDb, waitFor } from '../../server/test/harness.js';
import { RunlogWebhookError, verifyWebhook } from '../src/index.js';
import { sdkOnServer } from './helpers.js';

// a real delivery from a real server: what a receiver gets is what verifyWebhook checks
describeEachDb('SDK verifyWebhook', (dialect) => {
  const t = sdkOnServer(dialect);
  const received: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  let secret = '';

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/runlog`;
    const res = await fetch(`${t.server.url}/api/v1/webhooks`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.server.adminKey}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ url, agent_ids: ['verified-agent'] }),
    });
    expect(res.status).toBe(201);
    secret = ((await res.json()) as { secret: string }).secret;
    // the SDK records a run that fails; the server's background deliverer sends it
    await t.runlog
      .run('verified-agent', async () => {
        throw new Error('disk full');
      })
      .catch(() => {});
    expect(await t.runlog.flush()).toBe(true);
    await waitFor(() => received.length > 0, 'the delivery');
  });
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('answers the event of a delivery signed with the secret', () => {
    const [got] = received;
    const event = verifyWebhook(secret, got!.body, got!.headers['runlog-signature']);
    expect(event.type).toBe('run.failed');
    expect(event.id).toBe(got!.headers['runlog-webhook-id']);
    if (event.type !== 'run.failed') throw new Error('not a run event');
    expect(event.data.run).toMatchObject({ agent_id: 'verified-agent', status: 'failed' });
    expect(event.data.run.error).toMatchObject({ message: 'disk full' });
    // the body as text works as well as the bytes
    expect(
      verifyWebhook(secret, got!.body.toString('utf8'), got!.headers['runlog-signature']).id,
    ).toBe(event.id);
  });

  it('refuses another secret, a changed body, an old signature and a missing header', () => {
    const [got] = received;
    const header = got!.headers['runlog-signature'];
    const check = (fn: () => unknown, message: RegExp) => {
      expect(fn).toThrow(RunlogWebhookError);
      expect(fn).toThrow(message);
    };
    check(() => verifyWebhook('whsec_wrong', got!.body, header), /does not match/);
    const changed = got!.body.toString('utf8').replace('disk full', 'all good');
    check(() => verifyWebhook(secret, changed, header), /does not match/);
    const t0 = Number(/t=(\d+)/.exec(String(header))![1]);
    check(
      () => verifyWebhook(secret, got!.body, header, { now: (t0 + 301) * 1000 }),
      /past the 300 s tolerance/,
    );
    expect(
      verifyWebhook(secret, got!.body, header, { now: (t0 + 301) * 1000, toleranceSec: 600 }).type,
    ).toBe('run.failed');
    check(() => verifyWebhook(secret, got!.body, undefined), /no Runlog-Signature/);
    check(() => verifyWebhook(secret, got!.body, 'v1=abc'), /not of the form/);
  });
});
