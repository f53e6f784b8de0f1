import { describe, expect, it } from 'vitest';
import { ApiClient, CliError } from './client.js';

describe('ApiClient', () => {
  it('refuses a URL that is not one as bad usage, quoting it so an empty one shows', () => {
    const refusal = (url: string) => {
      try {
        new ApiClient({ url, apiKey: 'rl_key' });
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(refusal('')).toEqual(
      new CliError('--url (RUNLOG_URL) "" is not a valid URL, such as http://127.0.0.1:4680', 2),
    );
    expect((refusal('not a url') as CliError).message).toBe(
      '--url (RUNLOG_URL) "not a url" is not a valid URL, such as http://127.0.0.1:4680',
    );
    expect((refusal('') as CliError).exitCode).toBe(2);
  });
});
