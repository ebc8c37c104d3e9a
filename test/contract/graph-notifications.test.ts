import { describe, expect, it } from 'vitest';
import {
  isLegacyNotification,
  translateNotifications,
  translateNotificationsText,
} from '../../src/contract/graph-notifications.js';
import { parseJson } from '../../src/contract/json.js';
import { LIMITS } from '../../src/contract/limits.js';

/** When JetStream stored the message: the `at` of every event of the batch. */
const AT = Date.parse('2026-11-27T09:00:00.000Z');

const CALL_ID = '57dab8b1-894c-409a-b240-bd8beae78896';
const CALL_ID_UPPER = '57DAB8B1894C409AB240BD8BEAE78896';
const GROUP_CALL_ID = '421f1100-2d4f-4d2b-9f5c-3c2a5e8b7d10';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const BOT_APP_ID = 'f2a6d6a3-52a4-4b53-8c2e-2f3e6d5a1b90';

function batch(...value: unknown[]) {
  return { '@odata.type': '#microsoft.graph.commsNotifications', value };
}

function callUrl(id: string) {
  return `/communications/calls/${id}`;
}

/** Translate and fail the test when the wrapper itself is refused. */
function translated(payload: unknown) {
  const result = translateNotifications(payload, AT);
  if (!result.ok) {
    throw new Error(`unexpected refusal: ${result.error}`);
  }
  return result.batch;
}

const caller = {
  '@odata.type': '#microsoft.graph.participantInfo',
  identity: {
    '@odata.type': '#microsoft.graph.identitySet',
    user: {
      '@odata.type': '#microsoft.graph.identity',
      displayName: 'Adele Vance',
      id: '112f7296-5fa4-42ca-bae8-6a692b15d4b8',
      tenantId: TENANT_ID,
    },
  },
  region: 'emea',
  languageId: 'en-US',
};

const botTargets = [
  {
    '@odata.type': '#microsoft.graph.invitationParticipantInfo',
    identity: {
      '@odata.type': '#microsoft.graph.identitySet',
      application: {
        '@odata.type': '#microsoft.graph.identity',
        displayName: 'Reception bot',
        id: BOT_APP_ID,
      },
    },
    endpointType: 'default',
  },
];

const incomingCall = {
  '@odata.type': '#microsoft.graph.commsNotification',
  changeType: 'created',
  resourceUrl: callUrl(CALL_ID),
  resource: `/app/calls/${CALL_ID}`,
  resourceData: {
    '@odata.type': '#microsoft.graph.call',
    state: 'incoming',
    direction: 'incoming',
    callbackUri: 'https://bot.contoso.com/api/calling',
    source: caller,
    targets: botTargets,
    requestedModalities: ['audio'],
    tenantId: TENANT_ID,
    myParticipantId: '499ff390-7a72-40e8-83a0-8fac6295ae7e',
    callChainId: 'b9c6d4e1-0f3a-4c2b-8e7d-6a5f4b3c2d1e',
    incomingContext: {
      '@odata.type': '#microsoft.graph.incomingContext',
      observedParticipantId: '499ff390-7a72-40e8-83a0-8fac6295ae7e',
      sourceParticipantId: '0c7d9b2a-6f4e-4d3c-9b8a-7e6f5d4c3b2a',
    },
  },
};

const chatInfo = {
  '@odata.type': '#microsoft.graph.chatInfo',
  threadId: '19:meeting_NjQ1MTg2ZTctYjY2Zi00ZWE3LThmNDMtOGQ1ZWQ1OGUxYTNh@thread.v2',
  messageId: '0',
  replyChainMessageId: null,
};

const meetingInfo = {
  '@odata.type': '#microsoft.graph.organizerMeetingInfo',
  organizer: {
    '@odata.type': '#microsoft.graph.identitySet',
    user: {
      '@odata.type': '#microsoft.graph.identity',
      id: '5810cede-f3cc-42eb-b2c1-e9bd5d53ec96',
      displayName: 'Bob Kelly',
      tenantId: TENANT_ID,
    },
  },
  allowConversationWithoutHost: true,
};

const groupCallInvite = {
  '@odata.type': '#microsoft.graph.commsNotification',
  changeType: 'created',
  resourceUrl: callUrl(GROUP_CALL_ID),
  resourceData: {
    '@odata.type': '#microsoft.graph.call',
    state: 'incoming',
    direction: 'incoming',
    source: caller,
    targets: botTargets,
    requestedModalities: ['audio', 'video'],
    tenantId: TENANT_ID,
    chatInfo,
    meetingInfo,
  },
};

function updated(id: string, state: string) {
  return {
    '@odata.type': '#microsoft.graph.commsNotification',
    changeType: 'updated',
    resourceUrl: callUrl(id),
    resourceData: { '@odata.type': '#microsoft.graph.call', id, state, direction: 'incoming' },
  };
}

function terminated(id: string, resultInfo: Record<string, unknown>) {
  return {
    '@odata.type': '#microsoft.graph.commsNotification',
    changeType: 'deleted',
    resourceUrl: callUrl(id),
    resourceData: {
      '@odata.type': '#microsoft.graph.call',
      state: 'terminated',
      resultInfo: { '@odata.type': '#microsoft.graph.resultInfo', ...resultInfo },
    },
  };
}

/** What Graph sends after a reject: `deleted` with no state at all. */
function bareDeleted(id: string) {
  return { changeType: 'deleted', resourceUrl: callUrl(id), resource: `/app/calls/${id}` };
}

function rosterUpdate(id: string) {
  return {
    '@odata.type': '#microsoft.graph.commsNotification',
    changeType: 'updated',
    resourceUrl: `${callUrl(id)}/participants`,
    resourceData: [
      {
        '@odata.type': '#microsoft.graph.participant',
        id: '499ff390-7a72-40e8-83a0-8fac6295ae7e',
        info: caller,
        mediaStreams: [{ mediaType: 'audio', direction: 'sendReceive' }],
        isMuted: false,
        isInLobby: false,
      },
    ],
  };
}

/** The invalid entries without the notification each carries (checked on its own below). */
function errorsOf(invalid: { index: number; error: string }[]): { index: number; error: string }[] {
  return invalid.map(({ index, error }) => ({ index, error }));
}

describe('translateNotifications: incoming calls', () => {
  it('turns a created notification in state incoming into call.incoming at the storage time', () => {
    const result = translated(batch(incomingCall));

    expect(result).toEqual({
      events: [
        {
          type: 'call.incoming',
          callId: CALL_ID,
          at: AT,
          tenantId: TENANT_ID,
          source: caller,
          targets: botTargets,
          direction: 'incoming',
        },
      ],
      invalid: [],
      ignored: 0,
    });
  });

  it('passes through only the call fields the contract names, not modalities or context', () => {
    const [event] = translated(batch(incomingCall)).events;

    expect(event).not.toHaveProperty('requestedModalities');
    expect(event).not.toHaveProperty('incomingContext');
    expect(event).not.toHaveProperty('callChainId');
    expect(event).not.toHaveProperty('callbackUri');
  });

  it('carries chatInfo and meetingInfo of a group call invite', () => {
    const [event] = translated(batch(groupCallInvite)).events;

    expect(event).toMatchObject({
      type: 'call.incoming',
      callId: GROUP_CALL_ID,
      chatInfo,
      meetingInfo,
      source: caller,
    });
  });

  it('treats optional call fields sent as null as absent', () => {
    const notification = {
      ...incomingCall,
      resourceData: { ...incomingCall.resourceData, chatInfo: null, meetingInfo: null },
    };

    const [event] = translated(batch(notification)).events;

    expect(event).toMatchObject({ type: 'call.incoming', callId: CALL_ID });
    expect(event).not.toHaveProperty('chatInfo');
    expect(event).not.toHaveProperty('meetingInfo');
  });

  it('ignores state incoming when the change is an update rather than a creation', () => {
    expect(translated(batch(updated(CALL_ID, 'incoming')))).toEqual({
      events: [],
      invalid: [],
      ignored: 1,
    });
  });
});

describe('translateNotifications: call ids', () => {
  it('reads the oldest format, with only resource and no @odata.type anywhere', () => {
    const payload = {
      value: [
        {
          changeType: 'created',
          resource: `/app/calls/${CALL_ID}`,
          resourceData: { state: 'incoming', direction: 'incoming', source: caller },
        },
      ],
    };

    const [event] = translated(payload).events;

    expect(event).toMatchObject({ type: 'call.incoming', callId: CALL_ID, source: caller });
  });

  it('gives the same canonical id to an upper-case undashed resourceUrl and a dashed lower-case resourceData.id', () => {
    const payload = batch(
      { changeType: 'updated', resourceUrl: callUrl(CALL_ID_UPPER), resourceData: {} },
      updated(CALL_ID, 'established'),
      {
        changeType: 'updated',
        resourceUrl: callUrl(CALL_ID_UPPER),
        resourceData: { id: CALL_ID, state: 'established' },
      },
      {
        changeType: 'updated',
        resourceUrl: callUrl(CALL_ID_UPPER),
        resourceData: { state: 'established' },
      },
    );

    const result = translated(payload);

    expect(result.events.map((event) => event.callId)).toEqual([CALL_ID, CALL_ID, CALL_ID]);
    expect(result.ignored).toBe(1);
  });

  it('takes the call id from resourceData.id when there is no path at all', () => {
    const [event] = translated(
      batch({ changeType: 'updated', resourceData: updated(CALL_ID, 'established').resourceData }),
    ).events;

    expect(event).toEqual({ type: 'call.answered', callId: CALL_ID, at: AT });
  });

  it('accepts an absolute resourceUrl with host, version and query string', () => {
    const notification = {
      changeType: 'deleted',
      resourceUrl: `https://graph.microsoft.com/v1.0/communications/calls/${CALL_ID_UPPER}?x=1`,
    };

    const [event] = translated(batch(notification)).events;

    expect(event).toEqual({ type: 'call.terminated', callId: CALL_ID, at: AT });
  });

  it('refuses a notification whose resourceData.id names another call than its resourceUrl', () => {
    const notification = {
      changeType: 'updated',
      resourceUrl: callUrl(GROUP_CALL_ID),
      resourceData: { id: CALL_ID, state: 'established' },
    };

    expect(errorsOf(translated(batch(notification)).invalid)).toEqual([
      {
        index: 0,
        error: `value[0].resourceData.id: must name the same call as resourceUrl (got ${CALL_ID}, resourceUrl names ${GROUP_CALL_ID})`,
      },
    ]);
  });
});

describe('translateNotifications: later changes', () => {
  it('turns state established into call.answered and ignores establishing, in either order', () => {
    const establishingFirst = translated(
      batch(updated(CALL_ID, 'establishing'), updated(CALL_ID, 'established')),
    );
    const establishedFirst = translated(
      batch(updated(CALL_ID, 'established'), updated(CALL_ID, 'establishing')),
    );

    const expected = {
      events: [{ type: 'call.answered', callId: CALL_ID, at: AT }],
      invalid: [],
      ignored: 1,
    };
    expect(establishingFirst).toEqual(expected);
    expect(establishedFirst).toEqual(expected);
  });

  it('turns a deleted call in state terminated into call.terminated with integer codes as strings', () => {
    const payload = batch(
      terminated(CALL_ID, { code: 0, subcode: 540000, message: 'Call ended by the caller.' }),
    );

    expect(translated(payload).events).toEqual([
      {
        type: 'call.terminated',
        callId: CALL_ID,
        at: AT,
        code: '0',
        subcode: '540000',
        message: 'Call ended by the caller.',
      },
    ]);
  });

  it('keeps resultInfo codes that arrive as strings', () => {
    const payload = batch(
      terminated(CALL_ID, { code: '408', subcode: '10057', message: 'Timeout' }),
    );

    expect(translated(payload).events).toEqual([
      {
        type: 'call.terminated',
        callId: CALL_ID,
        at: AT,
        code: '408',
        subcode: '10057',
        message: 'Timeout',
      },
    ]);
  });

  it('turns state terminated into call.terminated even when the change is an update', () => {
    const [event] = translated(batch(updated(CALL_ID, 'terminated'))).events;

    expect(event).toEqual({ type: 'call.terminated', callId: CALL_ID, at: AT });
  });

  it('turns the bare deleted that follows a reject into call.terminated with no result fields', () => {
    const result = translated(batch(updated(CALL_ID, 'terminating'), bareDeleted(CALL_ID)));

    expect(result).toEqual({
      events: [{ type: 'call.terminated', callId: CALL_ID, at: AT }],
      invalid: [],
      ignored: 1,
    });
  });

  it.each([
    'establishing',
    'hold',
    'transferring',
    'transferAccepted',
    'redirecting',
    'terminating',
    'ringing',
    'unknownFutureValue',
    'someStateGraphAddsNextYear',
  ])('ignores an update in state %s without reporting it as invalid', (state) => {
    expect(translated(batch(updated(CALL_ID, state)))).toEqual({
      events: [],
      invalid: [],
      ignored: 1,
    });
  });

  it('ignores a change type it does not know, whatever the state', () => {
    const notification = { ...updated(CALL_ID, 'terminated'), changeType: 'unknownFutureValue' };

    expect(translated(batch(notification))).toEqual({ events: [], invalid: [], ignored: 1 });
  });

  it('ignores a participant roster collection', () => {
    expect(translated(batch(rosterUpdate(CALL_ID)))).toEqual({
      events: [],
      invalid: [],
      ignored: 1,
    });
  });

  it('ignores an operation update below the call even though it carries its own id', () => {
    const operation = {
      changeType: 'deleted',
      resourceUrl: `${callUrl(CALL_ID)}/operations/11b5d4b1-1f2e-4c8a-9d6b-0a3e2f1c4b5d`,
      resourceData: {
        '@odata.type': '#microsoft.graph.commsOperation',
        id: '11b5d4b1-1f2e-4c8a-9d6b-0a3e2f1c4b5d',
        status: 'completed',
      },
    };

    expect(translated(batch(operation))).toEqual({ events: [], invalid: [], ignored: 1 });
  });
});

describe('translateNotifications: batches', () => {
  it('translates a mixed batch into events in the order of the batch', () => {
    const payload = batch(
      incomingCall,
      rosterUpdate(CALL_ID),
      groupCallInvite,
      updated(CALL_ID_UPPER, 'establishing'),
      updated(CALL_ID_UPPER, 'established'),
      updated(GROUP_CALL_ID, 'unknownFutureValue'),
      { changeType: 'deleted', resource: `/app/calls/${GROUP_CALL_ID.replaceAll('-', '')}` },
      terminated(CALL_ID, { code: '0', subcode: 540000 }),
    );

    const result = translated(payload);

    expect(result.events.map((event) => [event.type, event.callId])).toEqual([
      ['call.incoming', CALL_ID],
      ['call.incoming', GROUP_CALL_ID],
      ['call.answered', CALL_ID],
      ['call.terminated', GROUP_CALL_ID],
      ['call.terminated', CALL_ID],
    ]);
    expect(result.events.every((event) => event.at === AT)).toBe(true);
    expect(result.ignored).toBe(3);
    expect(result.invalid).toEqual([]);
  });

  it('reports bad notifications by index and keeps the good ones of the same batch', () => {
    const payload = batch(
      updated(CALL_ID, 'established'),
      { changeType: 'deleted', resourceData: { state: 'terminated' } },
      'not a notification',
      { changeType: 'deleted', resourceUrl: callUrl('bad.id') },
      { changeType: 'updated', resourceData: { id: 'has space', state: 'established' } },
      { resourceUrl: callUrl(CALL_ID), resourceData: { state: 'established' } },
      bareDeleted(GROUP_CALL_ID),
    );

    const result = translated(payload);

    expect(result.events).toEqual([
      { type: 'call.answered', callId: CALL_ID, at: AT },
      { type: 'call.terminated', callId: GROUP_CALL_ID, at: AT },
    ]);
    expect(errorsOf(result.invalid)).toEqual([
      { index: 1, error: 'value[1].resourceUrl: is required (or resource, or resourceData.id)' },
      { index: 2, error: 'value[2]: must be an object' },
      {
        index: 3,
        error:
          'value[3].resourceUrl: the call id must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)',
      },
      {
        index: 4,
        error:
          'value[4].resourceData.id: must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)',
      },
      { index: 5, error: 'value[5].changeType: is required' },
    ]);
    expect(result.ignored).toBe(0);
  });

  it('names the resource field when only resource holds a refused id', () => {
    const result = translated(batch({ changeType: 'deleted', resource: '/app/calls/' }));

    expect(errorsOf(result.invalid)).toEqual([
      { index: 0, error: 'value[0].resource: the call id must not be empty' },
    ]);
  });

  it('names mistyped fields where the notification holds them', () => {
    const payload = batch(
      { changeType: 7, resourceUrl: callUrl(CALL_ID) },
      { changeType: 'updated', resourceUrl: 42 },
      { changeType: 'updated', resourceUrl: callUrl(CALL_ID), resourceData: 'call' },
      { changeType: 'updated', resourceUrl: callUrl(CALL_ID), resourceData: { state: 3 } },
      { changeType: 'updated', resourceData: { id: 12, state: 'established' } },
      {
        ...incomingCall,
        resourceData: { ...incomingCall.resourceData, source: 'Adele', targets: {} },
      },
      { ...bareDeleted(CALL_ID), resourceData: { resultInfo: 'gone' } },
      terminated(CALL_ID, { code: true, message: 5 }),
    );

    expect(errorsOf(translated(payload).invalid)).toEqual([
      { index: 0, error: 'value[0].changeType: must be a string' },
      { index: 1, error: 'value[1].resourceUrl: must be a string' },
      { index: 2, error: 'value[2].resourceData: must be an object or an array' },
      { index: 3, error: 'value[3].resourceData.state: must be a string' },
      { index: 4, error: 'value[4].resourceData.id: must be a string' },
      {
        index: 5,
        error:
          'value[5].resourceData.source: must be an object; value[5].resourceData.targets: must be an array',
      },
      { index: 6, error: 'value[6].resourceData.resultInfo: must be an object' },
      {
        index: 7,
        error:
          'value[7].resourceData.resultInfo.code: must be a string or a number; value[7].resourceData.resultInfo.message: must be a string',
      },
    ]);
  });

  it('accepts an empty batch', () => {
    expect(translated({ value: [] })).toEqual({ events: [], invalid: [], ignored: 0 });
  });
});

describe('translateNotifications: the wrapper', () => {
  it.each([
    ['no value', { '@odata.type': '#microsoft.graph.commsNotifications' }],
    ['a value that is an object', { value: incomingCall }],
    ['a value that is null', { value: null }],
  ])('refuses a payload with %s, naming value', (_, payload) => {
    expect(translateNotifications(payload, AT)).toEqual({
      ok: false,
      error: 'value: must be an array of notifications',
    });
  });

  it.each([
    ['an array', [incomingCall]],
    ['a string', 'hello'],
    ['null', null],
  ])('refuses a payload that is %s rather than an object', (_, payload) => {
    expect(translateNotifications(payload, AT)).toEqual({
      ok: false,
      error: '(message): must be a JSON object',
    });
  });

  it('refuses a payload whose @odata.type is another resource', () => {
    const result = translateNotifications(
      { '@odata.type': '#microsoft.graph.changeNotificationCollection', value: [] },
      AT,
    );

    expect(result).toEqual({
      ok: false,
      error:
        '@odata.type: must be #microsoft.graph.commsNotifications when present (got "#microsoft.graph.changeNotificationCollection")',
    });
  });

  it('throws on an at that is not an epoch-ms time, since that is a caller bug', () => {
    expect(() => translateNotifications(batch(), Number.NaN)).toThrow(RangeError);
  });
});

describe('translateNotificationsText', () => {
  it('decodes the JSON text and translates it', () => {
    const result = translateNotificationsText(JSON.stringify(batch(incomingCall)), AT);

    expect(result).toMatchObject({
      ok: true,
      batch: { events: [{ type: 'call.incoming', callId: CALL_ID }], invalid: [], ignored: 0 },
    });
  });

  it('refuses text that is not JSON, saying why', () => {
    const result = translateNotificationsText('{"value": [', AT);

    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/^\(message\): must be JSON \(.+\)$/);
  });

  it('refuses JSON that is not a notification batch', () => {
    expect(translateNotificationsText('{"value": 3}', AT)).toEqual({
      ok: false,
      error: 'value: must be an array of notifications',
    });
  });
});

describe('isLegacyNotification', () => {
  it('is true for an object without value, as a pre-Graph notification is', () => {
    const legacy = {
      id: '9f1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d',
      type: 'incomingCall',
      callState: 'incoming',
      links: { callback: 'https://bot.contoso.com/api/calling/callback' },
    };

    expect(isLegacyNotification(legacy)).toBe(true);
  });

  it('is false for a Graph batch, with or without @odata.type', () => {
    expect(isLegacyNotification(batch(incomingCall))).toBe(false);
    expect(isLegacyNotification({ value: [] })).toBe(false);
  });

  it('is false for a malformed Graph batch, which deserves a 400 rather than a 204', () => {
    expect(isLegacyNotification({ value: 'nope' })).toBe(false);
    expect(isLegacyNotification({ '@odata.type': '#microsoft.graph.commsNotifications' })).toBe(
      false,
    );
  });

  it('is false for anything that is not a JSON object', () => {
    expect(isLegacyNotification([incomingCall])).toBe(false);
    expect(isLegacyNotification(null)).toBe(false);
    expect(isLegacyNotification('text')).toBe(false);
    expect(isLegacyNotification(204)).toBe(false);
  });
});

describe('translateNotifications: bounds', () => {
  it('gives each bad notification its own entry, carrying that notification', () => {
    const bad = { changeType: 7 };
    const result = translated({ value: [bad] });
    expect(result.invalid).toEqual([
      { index: 0, error: 'value[0].changeType: must be a string', item: bad },
    ]);
  });

  it(`reads at most ${LIMITS.batchItems} notifications of a batch and says how many more were left`, () => {
    // Participant roster updates: valid, ignored.
    const items = Array.from({ length: LIMITS.batchItems + 5 }, () => ({
      changeType: 'updated',
      resourceUrl: '/communications/calls/c1/participants',
      resourceData: [],
    }));
    const result = translated({ value: items });
    expect(result.invalid).toEqual([
      {
        index: LIMITS.batchItems,
        error: `value: at most ${LIMITS.batchItems} notifications are read from one batch; 5 more were not used`,
        item: items.slice(LIMITS.batchItems),
      },
    ]);
    expect(result.ignored).toBe(LIMITS.batchItems);
  });

  it('refuses a batch nested deeper than the JSON limit, without walking it recursively', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const result = translateNotificationsText(`{"value": ${deep}}`, Date.now());
    expect(result).toEqual({ ok: false, error: '(message): must not nest deeper than 32 levels' });
    // The depth check itself walks all 100,000 levels without a stack overflow.
    expect(parseJson(deep, 1_000_000).ok).toBe(true);
  });
});
