#!/usr/bin/env python3
"""Generate calltype's synthetic Contact Lens sample calls.

Composes post-call analysis documents (Version 1.1.0, VOICE, redacted copy) for six call
types from hand-written building blocks: openings, identity checks, several problem
statements, detail exchanges and resolutions per type, hold and transfer chatter, small
talk and closings. Every choice comes from one seeded `random.Random`, so the same seed
writes byte-identical files. Python 3 standard library only.

    python3 samples/generate.py                 # writes samples/calls, labels.csv, manifest.csv, events/
    python3 samples/generate.py --seed 7 --out /tmp/other --per-type 50

Text markup used in the blocks below:
    {a|b|c}   pick one alternative (nesting allowed; an empty alternative means "nothing")
    «...»     an issue (customer turn) or an outcome (agent turn) that Contact Lens would detect
    ‹...›     an action item that Contact Lens would detect
    [PII]     a redacted entity, as Contact Lens writes it in the redacted copy
"""

import argparse
import csv
import datetime as dt
import hashlib
import json
import random
import re
import shutil
import urllib.parse
import uuid
from pathlib import Path

DEFAULT_SEED = 20261120
LABELS = [
    "billing_dispute",
    "cancellation",
    "card_not_received",
    "technical_fault",
    "address_change",
    "payment_arrangement",
]
ACCOUNT_ID = "123456789012"
BUCKET = "calltype-demo"
REGION = "us-east-1"
DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)]

# ---------------------------------------------------------------------------------------
# Shared building blocks. A block is a list of (role, text); role "A" agent, "C" customer.
# ---------------------------------------------------------------------------------------

AGENT_GREETINGS = [
    "{Thank you for calling|Thanks for calling} {Brightwater|Brightwater Bank|Brightwater card services}, "
    "{my name is|this is|you're speaking with} [PII]. How {can|may} I help {you |}today?",
    "Good {morning|afternoon}, {you're through to|welcome to} Brightwater, [PII] speaking. What can I do for you?",
    "Hi there, {thanks for holding|thanks for waiting}, you're {speaking|through} to [PII]. How can I help?",
    "{Hello|Hi}, Brightwater {customer service|customer care}, {this call may be recorded for quality and training purposes|calls are recorded for training}. "
    "My name's [PII], {who am I speaking with|how can I help}?",
    "Brightwater, [PII] speaking, how can I help you today?",
]

# The customer speaks first (the agent's greeting was lost to the IVR), and the agent answers.
HELLO_PAIRS = [
    ("{Hi|Hello|Hey}{,| there,} {yes|yeah|}{,|} {um|uh|}", "Hi, {you're through to Brightwater|this is Brightwater}, {how can I help|what can I do for you}?"),
    ("Oh, hi. {Sorry|Okay}, {I wasn't sure if I was through to a person|I've been waiting a while}.", "{Sorry about the wait|Apologies for the wait}, {you're through to a person now|you're through now}. How can I help?"),
    ("Hello? {Can you hear me?|Is this the right number?}", "{Yes|Yes, hi}, I can hear you {fine|perfectly}. {What can I help with|How can I help} today?"),
    ("Hi, how are you?", "{I'm well, thank you|Not bad, thanks for asking}. What can I do for you?"),
    ("Hi, {good morning|good afternoon}.", "{Good morning|Hello}, you're through to {Brightwater|customer service}. What's the call about today?"),
]

TRANSFERRED_IN = [
    "Hi, I {just|} got transferred over from {the main line|another department|your general enquiries team}, {so|} I'll start again.",
    "Hello, {yeah,|} I was put through to you from {the automated menu|someone else}, I'm not sure I'm in the right place.",
]

TRANSFERRED_IN_ACK = [
    "No problem at all, {you're in the right place|I can help with that}. {Go ahead|What's happened}?",
    "{That's fine|Okay}, {I've got you now|let's start from the top}. What's going on?",
]

VERIFICATIONS = [
    [
        ("A", "{Before we go any further|Before I look into that|Sure, first}, can I {take|get} your full name {please|}?"),
        ("C", "{Yeah, it's|Yes, it's|Sure,} [PII]."),
        ("A", "{Thank you|Thanks}. And your date of birth?"),
        ("C", "[PII]."),
        ("A", "{And|Lastly,} the first line of your address and {the postcode|your postcode}?"),
        ("C", "{It's|Um,} [PII], [PII]."),
        ("A", "{Perfect|Lovely|Great}, {thanks|thank you}, {that's you verified|you're verified|that all matches}."),
    ],
    [
        ("A", "{Okay|Sure}, can I {get|take} the last four digits of {the|your} card {please|}?"),
        ("C", "{Um,|Uh,|} {it's|} [PII]."),
        ("A", "And can you confirm your date of birth for me?"),
        ("C", "{It's|Yep,} [PII]."),
        ("A", "{Thank you|Thanks for that}, {I've found your account|I've got your account up} {here|now}."),
    ],
    [
        ("A", "I've just sent a one-time passcode to the mobile number {on file|we have for you}, can you read it back to me?"),
        ("C", "{Hang on|One second|Bear with me}... {okay,|right,} it's [PII]."),
        ("A", "{That's verified|That's correct}, {thank you|thanks}."),
    ],
    [
        ("A", "{Can I|Could I} take your name and date of birth, {please|to start with}?"),
        ("C", "{Sure|Yes}, [PII], {and|} [PII]."),
        ("A", "{Thanks|Thank you}, and {can you confirm|what's} the postcode on the account?"),
        ("C", "[PII]."),
    ],
    [
        ("A", "I'll just need to {verify you|run through security} first. What's your customer number?"),
        ("C", "{Oh, I don't have that with me|I'm not sure I have it}, {sorry|um}."),
        ("A", "{That's fine|No worries}, I can use your date of birth and postcode instead."),
        ("C", "{Okay|Right}, it's [PII], and the postcode is [PII]."),
        ("A", "{Thank you|Great}, {that's all matched up|I've found you}."),
    ],
]

HOLD_OUT = [
    ("A", "{Let me|I'll just} {pull up|bring up|have a look at} {the account|your account|the details}. {Do you mind if I|Can I|Is it okay if I} put you on a {brief|short|quick} hold?"),
    ("A", "{Okay|Right}, I need to {check something with|speak to} {my team leader|the back office|a colleague}. {Could you bear with me|Can you hold the line} for {a minute|a couple of minutes}?"),
    ("A", "Give me {one moment|a second|a minute} while I {look into that|check the system}, I'm just going to pop you on hold."),
]
HOLD_OK = [
    "{Sure|Yeah, that's fine|No problem|Okay}.",
    "{Yeah,|} go ahead.",
    "{Fine|Okay}, {but please be quick|I'm in a bit of a rush}.",
]
HOLD_BACK = [
    "{Thank you for holding|Thanks for waiting|Sorry about the wait|Thanks for your patience}{.|, I'm back.}",
    "{Hi, are you still there|Hello, still with me}? {Thanks for holding|Sorry that took a while}.",
]
HOLD_BACK_ACK = ["{Yes|Yep|Still here}.", "Yes, I'm here.", "{Mm-hmm|Yeah}."]

SECONDARY = [
    [
        ("C", "Actually, {while I've got you|one more thing}, {can you tell me|what's} the {current|} balance on the account?"),
        ("A", "{Of course|Sure}, {the current balance is|you're showing a balance of} [PII]."),
        ("C", "{Okay|Right}, {thanks|that's what I thought}."),
    ],
    [
        ("C", "{Oh, and|Also,} {what are your opening hours|are you open on the weekend}, in case I need to call back?"),
        ("A", "We're open {eight till eight|from eight in the morning until eight at night} Monday to Friday, and {nine till five|nine to five} on Saturdays."),
        ("C", "{Great|Perfect}, {thanks|good to know}."),
    ],
    [
        ("C", "{Can I also|Could you also} {switch me to paperless statements|stop the paper statements}? I {never read them|just recycle them}."),
        ("A", "{Done|That's done}, you'll get your statements {in the app|by email} from {now on|next month}."),
    ],
    [
        ("C", "{Is my email address still right on there|Have you got my right email} by the way?"),
        ("A", "{I've got|We have} [PII] on file, is that still {correct|current}?"),
        ("C", "{Yes|Yep}, that's {the one|fine}."),
    ],
]

CLOSINGS = [
    [
        ("A", "Is there anything else I can help you with today?"),
        ("C", "{No, that's everything|No, that's it|That's all}{, thanks| thank you|}."),
        ("A", "{Okay|Alright|No problem}. {Thanks for calling|Thank you for calling Brightwater}, have a {good|lovely|great} {day|evening|weekend}."),
        ("C", "{You too|Thanks, bye|Bye now|Cheers, bye}."),
    ],
    [
        ("A", "{Anything else|Is there anything else} I can do for you?"),
        ("C", "{No, I think that's it|Nope, that's all I needed}."),
        ("A", "{Okay|Alright}, {you'll get a short survey by text after this call|you might get a quick survey after the call}, {it would be great if you could fill it in|any feedback helps}. {Take care|Have a good one}."),
        ("C", "{Will do|Okay}, {bye|thanks}."),
    ],
    [
        ("A", "{Was there anything else today|Can I help with anything else}?"),
        ("C", "{No|No thanks}."),
        ("A", "Thanks for calling, {bye|goodbye} {now|}."),
    ],
    [
        ("C", "{Okay|Right}, {I think that's everything|that's all I needed}. {Thanks for your help|Thank you}."),
        ("A", "{You're very welcome|No problem at all}, {take care|have a good day}."),
    ],
]

# ---------------------------------------------------------------------------------------
# Call types. Each has several problem statements (customer opens the topic, sometimes with
# the agent's first question), detail exchanges, resolutions, follow-ups and a team that a
# call can be transferred to.
# ---------------------------------------------------------------------------------------

TYPES = {
    "billing_dispute": {
        "problems": [
            ["txn", ("C", "{Hi, |}I'm calling about my {latest|last} statement. «There's a charge on there {for|of} [PII] that I {don't recognise|didn't make|never authorised}.»")],
            ["dup", ("C", "«I've been charged twice for the same {purchase|transaction|order}» {at|from} [PII], {and I only bought it once|it's showing up two times}."),
             ("A", "{I'm sorry to hear that|Oh no, okay}. {Are both transactions showing as completed|Are they both posted, or is one still pending}?"),
             ("C", "{Both of them|They're both} {went through|are posted}, {I checked this morning|I looked in the app}.")],
            ["late", ("C", "{Yeah, so|So} «I was charged a late payment fee {this month|on my statement} but I paid on time», I've got the {confirmation|receipt} from my bank.")],
            ["merchant", ("C", "«I want to dispute {a transaction|a payment}.» I {cancelled|returned} {an order|a hotel booking|a subscription} with [PII] {weeks ago|last month} and they {still took the money|charged me anyway}.")],
            ["interest", ("C", "My bill {is way higher|is much more} than {usual|normal} this month. «There's {an interest charge|a fee} I don't understand» and I want it {looked at|explained}."),
             ("A", "{Okay|Sure}, {let's go through it together|I can take a look}. {Which|What} amount are you {looking at|querying}?"),
             ("C", "{The|It's the} [PII] {one near the bottom|charge on the twelfth}.")],
            ["merchant", ("C", "{I was|I've been} overcharged. «The amount on the receipt is [PII] but you've billed me [PII]», {that's not right|that's the wrong amount}.")],
            ["txn", ("C", "Hi, «I need to query {a direct debit|a payment} that came out of my account» that {I don't think I owe|shouldn't have}. {It's really annoying|I'm pretty frustrated about it}.")],
        ],
        "details": [
            ["txn dup merchant", ("A", "{Can you tell me|What's} the date of the transaction {you're disputing|you're querying}?"),
             ("C", "{It was|I think it was} [PII], {roughly|give or take a day}.")],
            ["merchant dup txn", ("A", "And {did you contact the merchant|have you spoken to the retailer} {about it|first}?"),
             ("C", "{Yes, they said|I tried, they said} {it's on your side|to call my bank|they can't see it}. {Useless|Which doesn't help me}.")],
            ["txn dup", ("A", "{Is your card still in your possession|Do you still have the card with you}?"),
             ("C", "{Yes|Yeah}, it's {right here|in my wallet}. {Nobody else uses it|I'm the only one who uses it}.")],
            ["txn dup merchant", ("A", "{I can see|I'm looking at} the {transaction|charge} now, [PII] at [PII]. {Is that the one|That's the one you mean}?"),
             ("C", "{Yes|Yep}, that's {it|the one}.")],
            ["dup", ("A", "{And you didn't|So you didn't} {authorise|agree to} the second payment?"),
             ("C", "No, {definitely not|absolutely not}. {I only pressed pay once|I'd remember}.")],
            ["interest", ("A", "{I can see|There's} {an interest charge|interest} of [PII] on {the|your} {latest|last} statement. {Did you pay the full balance last month|Was last month's balance paid in full}?"),
             ("C", "{I paid most of it|I paid the minimum, I think}, {not all of it|not the whole thing}. {Nobody told me I'd be charged for that|I didn't know that mattered}.")],
            ["late", ("A", "{When did you|What date did you} make the payment {to us|on the account}?"),
             ("C", "[PII], {a few days before the due date|well before it was due}. {It's on my bank statement|I've got the confirmation email}.")],
        ],
        "resolutions": [
            ["txn merchant", ("A", "{Okay|Right}, «I've raised a dispute on that transaction» and ‹put a temporary credit of [PII] on your account› while {we investigate|the merchant responds}. {It can take up to|It usually takes} {ten working days|a couple of weeks}."),
             ("C", "{Okay, that's fine|Okay, good}, {as long as I'm not paying for it|thank you}.")],
            ["late", ("A", "{I can see|You're right,} the payment {arrived|came in} on time, {so|} «I've refunded the late fee of [PII]». {You'll see it on|It'll show on} your next statement."),
             ("C", "{Great|Brilliant}, {thank you|thanks so much}. {That's a relief|I was getting worried}.")],
            ["dup", ("A", "{So|Okay,} the second charge {was a duplicate|is a duplicate authorisation}. «I've reversed it», {it'll drop off|it should disappear} in {three to five|a few} working days."),
             ("C", "{Oh good|Perfect}. {Thanks|Cheers}.")],
            ["interest", ("A", "{Unfortunately|I'm afraid} that interest charge {is correct|is valid}, because the {full balance|statement balance} wasn't paid by the due date. «As a one-off, though, I can waive it this time.»"),
             ("C", "{Oh, okay|Really?}, {that's kind of you|thank you}. {I'll pay in full next time|I didn't realise}.")],
            ["merchant txn", ("A", "I'll need you to ‹fill in a dispute form›, ‹I'm sending it to your email now›. Once we get it back {we'll|the disputes team will} {contact the merchant|raise a chargeback}."),
             ("C", "{Okay|Fine}. {How long does that take|And then what}?"),
             ("A", "{Usually|Normally} {about|around} {thirty|forty-five} days, {but|and} ‹we'll keep you updated by email›.")],
        ],
        "followups": [
            ["txn dup merchant", ("C", "{Will this affect my credit score|Is this going to hurt my credit rating}?"),
             ("A", "{No|Not at all}, a dispute {doesn't affect|won't show on} your credit file.")],
            ["txn dup merchant", ("C", "{Do I need to pay the disputed amount in the meantime|Should I still pay that bit}?"),
             ("A", "{No|You don't}, {just pay the rest of the balance|pay everything except the disputed amount}, {we've put it on hold|it's on hold}.")],
            [("C", "{Can you make sure this doesn't happen again|How do I stop this happening again}?"),
             ("A", "{I'd suggest|You could} {turning on transaction alerts in the app|setting up notifications}, then you'll see every charge {straight away|as it happens}.")],
        ],
        "transfer_team": "disputes",
        "frustration": 0.55,
    },
    "cancellation": {
        "problems": [
            ["close", ("C", "{Hi, yeah,|Hi,} «I'd like to {cancel|close} my {credit card|card account|account}», {please|I don't use it anymore}.")],
            ["plan", ("C", "«I want to cancel my {premium|Gold|travel} membership.» {The annual fee|The monthly fee} {just isn't worth it|is too much} {for me anymore|now}."),
             ("A", "{Okay|I understand}. {Can I ask why|May I ask what's prompted that}?"),
             ("C", "{I've|We've} {moved to another bank|got a card with no fee elsewhere|stopped travelling so much}, {honestly|to be honest}.")],
            ["close", ("C", "{Yeah, so|So} «I'm ringing to close the account.» {I've been|I'm} {really unhappy|fed up} with {the service|how things have gone} {lately|this year}.")],
            ["plan", ("C", "I {need to|want to} {end|stop} my {insurance add-on|card protection plan|subscription}. «I don't want it renewed» {next month|when it comes up}.")],
            ["bereave", ("C", "My {husband|wife|partner} {passed away|died} {recently|last month} and «I need to close {their|the} account».",),
             ("A", "{I'm so sorry for your loss|I'm very sorry to hear that}. {We'll make this as easy as we can|I'll help you with that}.")],
            ["close", ("C", "Hi, «can you close my account {today|right now}?» {I've paid off the balance|The balance should be zero now} {and|so} I {don't need it|want it gone}.")],
        ],
        "details": [
            ["close plan", ("A", "{Is there anything we could do to keep you|Is there anything that would change your mind}?"),
             ("C", "{Not really|No, I don't think so}, {I've made up my mind|my mind's made up}.")],
            ["close bereave", ("A", "{Just so you know|Before I do that}, {there's|you have} [PII] {in reward points|of points} on the account. {Would you like to redeem them first|Do you want to use those before we close it}?"),
             ("C", "{Oh|Ah}, {yes please|I forgot about those}. {Can they go to my bank account|Put them towards the balance}?")],
            ["close bereave", ("A", "{Do you have any|Are there any} {regular payments|direct debits or subscriptions} {set up on the card|coming off this card}?"),
             ("C", "{Just|Only} {my phone bill|a streaming service}, {I'll move that|I've already moved it}.")],
            ["close bereave", ("A", "{Is|And is} the {balance|account} {fully|} paid off?"),
             ("C", "{It should be|Yes}, I {paid it|cleared it} {last week|a few days ago}.")],
            [("A", "{When would you like|When do you want} the {cancellation|closure} to {take effect|happen}?"),
             ("C", "{Straight away|As soon as possible|At the end of the month}, {please|if that's possible}.")],
        ],
        "resolutions": [
            ["close plan", ("A", "{I understand|Okay}. «Before you go, I can offer you {the first year fee-free|a fifty percent discount on the annual fee} if you stay.»"),
             ("C", "{Hmm|Oh}, {that's actually tempting|okay, that changes things}. {Go on then|Fine}, {I'll stay|I'll keep it} {for now|for another year}."),
             ("A", "«{Great|Lovely}, I've applied that to the account now.»")],
            ["close bereave", ("A", "{I understand|I've heard you}, {and|} I'm sorry {we couldn't keep you|to see you go}. «I've {closed|cancelled} the account {as of today|effective today}» and ‹you'll get a confirmation letter within {five|seven} working days›."),
             ("C", "{Okay|Thank you}. {Do I need to cut up the card|What do I do with the card}?"),
             ("A", "{Yes|Please}, cut it through the chip and {dispose of it|throw it away}.")],
            ["plan", ("A", "«The {plan|add-on} is cancelled and won't renew.» {Because|As} you're within the cooling-off period, ‹I've refunded [PII]› {too|as well}."),
             ("C", "{Oh brilliant|Great}, {thank you|I didn't know that}.")],
            ["close bereave", ("A", "{I can't close the account today because|I'm afraid there's still} a {pending transaction|small balance of [PII]} on it. ‹Once that clears I'll close it and send you a confirmation›."),
             ("C", "{Okay|Right}, {so I don't have to call back|as long as it gets done}?"),
             ("A", "{No|That's right}, ‹I've set a note on the account› so it closes {automatically|once it's at zero}.")],
        ],
        "followups": [
            ["close", ("C", "{Will closing it affect my credit score|Does closing it hurt my credit rating}?"),
             ("A", "{It can|It might} {change your available credit a little|lower your overall limit}, but {it won't be marked as anything bad|there's no negative mark}.")],
            ["close bereave", ("C", "{Can I get a final statement|Will I get a final statement}?"),
             ("A", "{Yes|You will}, ‹we'll send a final statement showing a zero balance›.")],
            ["close plan", ("C", "And {I won't be charged the annual fee again|there'll be no more fees}, right?"),
             ("A", "{That's right|Correct}, {no more fees will be charged|nothing further will come out}.")],
        ],
        "transfer_team": "retentions",
        "frustration": 0.4,
    },
    "card_not_received": {
        "problems": [
            ["late", ("C", "{Hi, |}«I was supposed to get a new card {two weeks ago|ten days ago|last week} and it {still hasn't arrived|never came}.»")],
            ["window", ("C", "«My replacement card hasn't turned up.» {My old one expired|The old one expires} {at the end of the month|on Friday} {and I'm worried|so I need it}.")],
            ["late", ("C", "{Yeah, so|So} I {ordered|requested} a {new|replacement} card {after I lost mine|because mine was damaged}, «but nothing's come {in the post|through the door}.»"),
             ("A", "{Sorry about that|Okay, let's find out what happened}. {When did you order it|Do you know when it was requested}?"),
             ("C", "{About|Around} [PII], {I think|if I remember right}.")],
            ["late", ("C", "«I opened the account {a couple of weeks|a month} ago and {never got|haven't received} the card.» I've got {the PIN|the PIN letter} but {no card|not the actual card}.")],
            ["late", ("C", "{Hello, |}«my card {still hasn't come|hasn't been delivered}» and I {really need it|need to pay for things}. {This is the second time|It's ridiculous, I've been waiting ages}.")],
            ["window", ("C", "{I was told|Your app says} my card {was dispatched|was sent out} on [PII] «but I haven't received it», {and I'm worried someone's taken it|has it gone missing}?")],
        ],
        "details": [
            [("A", "{Can I just confirm|Let me confirm} the address {we sent it to|it was posted to}. {Is it still|Do you still live at} [PII]?"),
             ("C", "{Yes|Yep}, {that's right|that's correct}.")],
            ["late", ("A", "{I can see|It looks like} the card was {dispatched|posted} on [PII] {by standard post|by first class post}."),
             ("C", "{That's|So that's} {over a week|nearly two weeks} ago {then|}.")],
            [("A", "{Do you share a letterbox|Is it a shared letterbox or a building with a communal mailroom}?"),
             ("C", "{It's a flat, so|Yes,} {there's a shared mail area downstairs|it all goes in one box}. {I checked|I've looked} {though|already}.")],
            [("A", "{Have there been any|I can't see any} {transactions on the new card|attempts to use the card}, {which is good|so it doesn't look like anyone has it}."),
             ("C", "{Okay|Oh good}, {that's a relief|thank goodness}.")],
            [("A", "{Have you had any|Have you noticed any} {other post going missing|problems with your post lately}?"),
             ("C", "{Not that I know of|No}, {everything else arrives fine|other letters come fine}.")],
        ],
        "resolutions": [
            [("A", "«I've cancelled the card that was sent» {just in case|to be safe}, and ‹ordered you a new one by express delivery›, {it should be with you in two to three working days|you'll have it by [PII]}."),
             ("C", "{Great|Okay, good}, {thanks|thank you}. {Will it have a new number|Is the number changing}?"),
             ("A", "{Yes|It will}, {the new card has a new number|so update any subscriptions once it arrives}.")],
            ["window", ("A", "{It was only posted|It only went out} {three|four} working days ago, {so|and} {it's still within|that's within} the {delivery window|normal timeframe}. ‹If it hasn't arrived by [PII], call us back and we'll cancel and reissue it›."),
             ("C", "{Okay|Fine}, {I'll give it a few more days|I'll wait then}.")],
            [("A", "«I've added your card to the app's digital wallet» so ‹you can pay with your phone straight away› while {the new card is on its way|you wait for the plastic}."),
             ("C", "{Oh|Ah}, {that's really helpful|I didn't know you could do that}. {Thanks|Brilliant}.")],
            [("A", "«I've reissued the card» and ‹I've set it to be collected from your local branch› {instead of posting it|so it can't go missing again}. {Bring photo ID|You'll need photo ID}."),
             ("C", "{That's better|Good}, {I'd rather do that|thanks}.")],
        ],
        "followups": [
            [("C", "{What about my PIN|Do I get a new PIN too}?"),
             ("A", "{Your PIN stays the same|It'll be the same PIN}, {you can view it in the app|you can check it in the app}.")],
            [("C", "{Can I still use my old card until then|Will my old card still work}?"),
             ("A", "{Your old card will keep working|You can keep using the old one} until {it expires|you activate the new one}.")],
            [("C", "{Can I get cash out without the card|How do I get cash in the meantime}?"),
             ("A", "{You can use card-free cash at our ATMs through the app|The app lets you withdraw cash without a card}.")],
        ],
        "transfer_team": "card services",
        "frustration": 0.5,
    },
    "technical_fault": {
        "problems": [
            ["app", ("C", "{Hi, |}«I can't log into the app.» {It keeps saying|I just get} '{something went wrong|an error occurred}' {every time|whenever I try}.")],
            ["decline", ("C", "«My card keeps getting declined {in shops|at the till|for contactless}» {even though there's money on it|but there's plenty on the account}. {It's embarrassing|It happened three times today}.")],
            ["online", ("C", "{So|Yeah, so} «online banking {won't let me|isn't letting me} make a transfer», {it just|the page} {spins|freezes} {and then|and} logs me out.")],
            ["chip", ("C", "«The chip on my card {seems to be|is} {broken|damaged}.» {It only works|I can only use it} {with contactless|by tapping}, {and|but} {the machine|the reader} says {card error|chip read failure} {when I insert it|otherwise}.")],
            ["otp", ("C", "«I'm not getting the {verification codes|one-time passcodes|security texts}» {when I pay online|to approve payments}, so {I can't buy anything|all my online orders fail}."),
             ("A", "{Oh, that's annoying|I'm sorry about that}. {When did this start|How long has this been happening}?"),
             ("C", "{Since|From} {the weekend|Tuesday|about a week ago}, {I think|roughly}.")],
            ["app", ("C", "«The app crashes as soon as I open it» {since the last update|after I updated my phone}. {I've tried everything|I've already reinstalled it}.")],
            ["atm", ("C", "«I tried to take money out at {a cash machine|an ATM} and it {didn't give me the cash|kept my card}» {but|and} {the money's gone from my account|it still says I withdrew it}.")],
        ],
        "details": [
            ["app otp", ("A", "{What phone|Which device} {are you using|is it on}, {and is the app up to date|and have you got the latest version}?"),
             ("C", "{It's|An} {an iPhone|an Android|a Samsung}, {and yes|and I think so}, {I updated it yesterday|it's the latest}.")],
            ["app online", ("A", "{Can you try|Could you} {closing the app completely and restarting your phone|logging out and back in} {for me|while I'm on the line}?"),
             ("C", "{Okay, hang on|One sec}... {No|Nope}, {same thing|still the same error}.")],
            ["app online", ("A", "{What exactly does the|What does the} {error message|screen} say?"),
             ("C", "{It says|Something like} '[PII]' {and a code|error} {five-oh-three|one-oh-four}, {I think|or something}.")],
            ["decline chip", ("A", "{Are you getting this in every shop|Is it every shop or one in particular}?"),
             ("C", "{Everywhere|All of them}, {the supermarket, the petrol station|even online}.")],
            ["otp", ("A", "{Is the mobile number we have|Can you confirm the mobile number} ending [PII] {still yours|correct}?"),
             ("C", "{Yes|Yep}, {same number|I've had it for years}.")],
            ["atm", ("A", "{Which machine was it|Where was the cash machine}, and {roughly what time|about what time}?"),
             ("C", "{The one outside|It was at} [PII], {about|around} [PII] {this morning|yesterday}.")],
            ["atm", ("A", "{Did the machine give you a receipt|Did you get a receipt or any message on the screen}?"),
             ("C", "{No|Nothing}, it {just beeped and went blank|said 'transaction cancelled'} {and the cash never came out|but no money came out}.")],
            ["decline chip", ("A", "{I can see|On my side I can see} {the declines|the attempts}, {they're coming back as|the reason is} {a chip error|a security block|a system timeout}."),
             ("C", "{So it's not me then|So it's your end}?")],
        ],
        "resolutions": [
            ["app online", ("A", "{It looks like|This is} {a known issue|an issue we're aware of} {with the latest app version|affecting some phones}. «Our technical team {are working on a fix|have a fix going out} {today|this week}.» ‹In the meantime you can use online banking in the browser›."),
             ("C", "{Okay|Right}, {as long as it's being fixed|that's frustrating but fine}.")],
            ["decline", ("A", "«I've {cleared|reset} the {security block|flag} on your card», {it was triggered by|it came from} {an unusual transaction|a failed PIN attempt}. {Try it now|It should work now}."),
             ("C", "{Let me try|Hang on}... {yep|yes}, {that's gone through|it's working now}. {Thanks|Great}.")],
            ["chip", ("A", "«Since the chip is damaged, I've ordered you a replacement card.» ‹It'll arrive in three to five working days›, {and your current card will keep working contactless|keep using contactless until then}."),
             ("C", "{Okay|Fine}, {thanks|good}.")],
            ["app online otp", ("A", "‹I've logged a fault report with our {IT team|digital team}›, reference [PII]. ‹Someone will call you back within forty-eight hours›."),
             ("C", "{Forty-eight hours?|Two days?} {That's a long time|Really}. {I need this working|I've got bills to pay}."),
             ("A", "{I understand|I know, I'm sorry}. ‹I've marked it as urgent› {and|} {you can still make payments by phone with us|in the meantime you can call us to make payments}.")],
            ["otp", ("A", "«I've re-registered your mobile number for the passcodes», {please|can you} try {the payment|the purchase} again."),
             ("C", "{Just did it|Okay}... {yes|yep}, {the code came through|I got the text}. {Brilliant|Perfect}.")],
            ["atm", ("A", "‹I've raised an ATM claim for [PII]›. {It usually takes|The investigation takes} {up to ten working days|about a week}, and ‹we'll refund it once the machine is balanced›."),
             ("C", "{Okay|Fine}. {And my card|What about the card it kept}?"),
             ("A", "‹I've cancelled it and ordered a new one›, {you'll have it in a few days|it's on its way}.")],
        ],
        "followups": [
            ["decline chip otp", ("C", "{Will I get charged for the failed payments|Are there fees for the declined payments}?"),
             ("A", "{No|There aren't}, {declined payments are free|nothing's charged for those}.")],
            ["app", ("C", "{Should I delete the app and reinstall it|Do I need to reinstall the app}?"),
             ("A", "{You can|It's worth trying}, {just make sure you've got your login details|have your passcode handy first}.")],
            [("C", "{Is my money safe though|Has anyone got into my account}?"),
             ("A", "{Yes|Absolutely}, {your money's safe|there's no sign of anyone else using the account}.")],
        ],
        "transfer_team": "technical support",
        "frustration": 0.6,
    },
    "address_change": {
        "problems": [
            ["move", ("C", "{Hi, |}«I've moved house and I need to update my address», {please|on the account}.")],
            ["move", ("C", "{Yeah, hi,|Hi,} «I need to change my address.» {We're moving|I'm moving} {next week|at the end of the month} {and|so} I want {my statements|my post} {to go|going} to the new place.")],
            ["postcode", ("C", "{I tried to|I was trying to} change my address {in the app|online} «but it won't accept my new postcode», {it says invalid|it keeps saying it can't find it}."),
             ("A", "{Oh, okay|Sorry about that}. {Is it a new build|Is the property quite new}?"),
             ("C", "{Yes|Yeah}, {it's a new development|we're the first people in it}.")],
            ["phone", ("C", "«{Can you update|I need to update} my contact details.» {I've|We've} moved {in with my partner|to a new flat}{, and I've got a new phone number too|}.")],
            ["poa", ("C", "{Hello, |}my {mum|dad} {has moved into a care home|is moving in with us} and «I need to change the address on {her|his} account». {I've got|I have} power of attorney."),
             ("A", "{Okay|Thank you}. {Have we got a copy of the power of attorney registered|Is the power of attorney registered with us}?"),
             ("C", "{Yes|I think so}, {I sent it in|we registered it} {last year|a while ago}.")],
            ["old", ("C", "«My post is still going to my old address» even though {I told you|I changed it} {weeks ago|last month}. {Someone else is getting my statements|The new owners are getting my letters}!")],
        ],
        "details": [
            ["move postcode phone poa", ("A", "{What's|Can I take} the new address, {please|including the postcode}?"),
             ("C", "{It's|Yeah, it's} [PII], [PII], [PII].")],
            ["move postcode phone", ("A", "{And when|When} did you {move|start living there}, {or when does the move happen|roughly}?"),
             ("C", "{On|It was} [PII]{, so just over a week ago|, so next Friday|}.")],
            ["move postcode phone old", ("A", "{Do you|Will you} {also want|need} {the card delivery address|your card address} changed {as well|too}?"),
             ("C", "{Yes, everything|Yes please, all of it|Everything} {should go to the new one|to the new address}.")],
            ["move phone", ("A", "{Is your phone number|Are your phone number and email} {staying the same|still the same}?"),
             ("C", "{The email's the same|Same email}, {but|and} the {phone|mobile} {is now|is} [PII].")],
            ["old", ("A", "{When did you first update it|When did you tell us about the move}, {do you remember|roughly}?"),
             ("C", "[PII], {I did it in the app|I did it over the phone}{, and it said it was done|}.")],
            ["old", ("A", "{And the old address is|So the letters are going to} [PII]?"),
             ("C", "{Yes|Yeah}, we sold it {in the summer|back in [PII]}. {The new owners rang me about it|I only found out because the buyers told me}.")],
            ["move postcode phone", ("A", "{Is it a house or a flat|Is there a flat number}?"),
             ("C", "{Flat|It's flat} [PII], {second floor|on the top floor}.")],
        ],
        "resolutions": [
            ["move phone", ("A", "«{That's updated now|I've updated the address on the account}.» ‹You'll get a letter at {both addresses|the old and the new address} confirming the change›, {that's a security measure|it's just for security}."),
             ("C", "{Okay|Makes sense}, {thanks|thank you}.")],
            ["postcode", ("A", "{I've found|There we go, I've got} the address {on our system|in the postcode finder} {now|manually}. «{It's saved|That's saved} on the account.»"),
             ("C", "{Oh good|Finally}, {thanks|that's sorted then}.")],
            ["phone", ("A", "«I've {updated|changed} the address and the mobile number.» ‹A text will go to the new number to confirm›, {please|just} {reply yes|follow the link} to {finish|complete} it."),
             ("C", "{Okay|Got it}, {I'll look out for it|will do}.")],
            ["old", ("A", "{I can see|It looks like} the {change was|earlier change was} {only made on your savings account|never saved properly}, {I'm sorry|apologies}. «I've now updated it on all your accounts» and ‹I'll raise a complaint about the letters that went to the old address›."),
             ("C", "{Thank you|Okay}. {That's quite worrying|I'm not happy about it}, {to be honest|but thanks}.")],
            ["poa", ("A", "«I've updated the address {using the power of attorney|on the account}.» ‹Statements will go to the care home from next month›, {or|and} ‹I can send them to you instead if you'd prefer›."),
             ("C", "{Send them to me|To me please}, {that's easier|I deal with everything}.")],
        ],
        "followups": [
            ["move postcode phone old", ("C", "{Will my card still work|Do I need a new card} {now I've moved|with the new address}?"),
             ("A", "{Your card will keep working|Nothing changes with the card}, {you don't need a new one|it's the same card}.")],
            [("C", "{How long until|When will} {the statements|my post} {start going|go} to the new address?"),
             ("A", "{From|Starting with} your next statement, {so in about|in around} {two|three} weeks.")],
            ["move postcode phone", ("C", "{Do I need to|Should I} {tell anyone else|update it anywhere else}?"),
             ("A", "{Just|Only} {any shops that have your card saved|places that use the billing address}, {for online payments|when you shop online}.")],
        ],
        "transfer_team": "customer records",
        "frustration": 0.25,
    },
    "payment_arrangement": {
        "problems": [
            ["hard", ("C", "{Hi, |}«I'm not going to be able to make my payment this month.» {I've lost my job|I've been made redundant|My hours were cut} and {things are tight|money's really tight}.")],
            ["hard", ("C", "{Yeah, so|So} «I'm {behind on|struggling with} my payments» and I {want to|need to} {set up|sort out} {a payment plan|some kind of arrangement}.")],
            ["hard", ("C", "«Can I {pay less|reduce my payments} for {a few months|a while}?» I've {had some medical bills|been in hospital} and {I'm a bit stuck|it's been hard}."),
             ("A", "{I'm sorry to hear that|Thanks for letting us know}. {We've got options for that|There are a few things we can do}. {Can I ask a few questions about your situation|Is it okay if I ask about your income and outgoings}?"),
             ("C", "{Sure|Yeah, of course}.")],
            ["hard", ("C", "I got a letter saying «my account is in arrears» and {I'm worried|I'm scared} {about what happens next|it'll go to debt collectors}. {I want to sort it out|I want to pay it, I just can't do it all at once}.")],
            ["date", ("C", "«I {want to|need to} move my payment date» {to after payday|to the twenty-eighth}, {my salary comes in later now|I've changed jobs}{, and maybe spread the missed payment out|}.")],
            ["missed", ("C", "{Hello, |}«I missed my last payment» {and|and now} {there's a fee|I've been charged}. {Can we work something out|Is there any way to pay it off gradually}?")],
        ],
        "details": [
            ["date missed", ("A", "{What date does your salary come in now|When do you get paid now}?"),
             ("C", "{The|On the} [PII], {it used to be the first|it changed with my new job}.")],
            ["missed", ("A", "{Was the missed payment a one-off|Is this the first time you've missed one}?"),
             ("C", "{Yes|Yeah}, {I just forgot|I was away and it slipped my mind}. {I can pay it today|I've got the money now}.")],
            ["hard", ("A", "{Roughly how much|How much} {could you afford|are you able to pay} each month {at the moment|right now}?"),
             ("C", "{Maybe|About|Probably} [PII], {at most|if I'm careful}.")],
            ["hard", ("A", "{Is this a short-term thing|Do you expect things to change soon}, {or do you think it'll last a while|or longer term}?"),
             ("C", "{Hopefully short-term|I'm hoping a few months}, {I've got interviews lined up|until I'm back at work}.")],
            ["hard", ("A", "{Can I ask|Could you tell me} {about your monthly income|what comes in each month}, {roughly|after tax}?"),
             ("C", "{About|Around} [PII] {now|at the moment}, {including benefits|from universal credit}.")],
            ["hard", ("A", "{And your|What are your} {main outgoings|essential bills}, {rent or mortgage, utilities|like rent and bills}?"),
             ("C", "{Rent's|Rent is} [PII], {and then|plus} {bills and food|gas, electric, council tax}, {so not much left|it doesn't leave much}.")],
            ["hard", ("A", "{Are you getting any help|Have you spoken to a debt advice charity}, {like StepChange|anyone independent}?"),
             ("C", "{Not yet|No}, {I didn't know that was an option|should I}?"),
             ("A", "{It's free and confidential|They're free}, ‹I'll text you their details after the call›.")],
        ],
        "resolutions": [
            ["hard", ("A", "«I've set up a payment plan of [PII] a month for {the next|} {three|six} months», and ‹I've frozen interest and fees while it's active›."),
             ("C", "{Oh, thank you|That's a huge relief}. {I really appreciate it|I was dreading this call}.")],
            ["hard", ("A", "«I've put a {thirty|sixty}-day breathing space on the account», so {no collections activity|we won't chase you} during that time. ‹We'll call you back on [PII] to agree a plan›."),
             ("C", "{Okay|Thank you}, {that gives me some time|that helps a lot}.")],
            ["date missed", ("A", "«{Your payment date is now|I've moved your due date to} the twenty-eighth» {from next month|starting next cycle}, and ‹the missed payment is split over the next three months›."),
             ("C", "{Perfect|Great}, {that works much better|that lines up with payday}.")],
            ["missed", ("A", "«I've refunded the late payment fee» and ‹set up a direct debit for the minimum payment› so {it won't happen again|you don't miss one again}."),
             ("C", "{Brilliant|Okay}, {thanks|thank you so much}.")],
            ["hard", ("A", "{I'm not able to agree a reduced plan myself|That amount needs approval}, {so|} ‹I'm going to refer you to our financial support team and they'll call you within two working days›. {Nothing will be reported|No further action will be taken} in the meantime."),
             ("C", "{Okay|Fine}, {as long as nothing bad happens|thanks for explaining}.")],
        ],
        "followups": [
            ["hard", ("C", "{Will this go on my credit file|Does a payment plan affect my credit score}?"),
             ("A", "{It may be recorded as an arrangement to pay|An arrangement can show on your file}, {but it's better than missed payments|which is better than defaults}.")],
            ["hard", ("C", "{Can I still use my card|Will my card still work} {while I'm on the plan|during the arrangement}?"),
             ("A", "{The card will be paused|Spending is paused} {while the plan is active|during the plan}, {to stop the balance growing|so the balance doesn't go up}.")],
            [("C", "{What if I can pay more next month|Can I pay it off early if things pick up}?"),
             ("A", "{Of course|Absolutely}, {you can pay extra any time|overpayments are always fine}, {no penalty|there's no charge}.")],
        ],
        "transfer_team": "financial support",
        "frustration": 0.35,
    },
}

# Contact Lens categories are rules an admin writes; these fire on words and behaviour,
# never on the label directly (so they agree with the label only partly).
CATEGORY_RULES = [
    ("ID-Verification-Completed", "A", r"\b(verified|that all matches|all matched up|found your account|found you)\b"),
    ("Agent-Apology", "A", r"\b(sorry|apolog)"),
    ("Fees-And-Charges", None, r"\b(fee|fees|interest|charge|charged)\b"),
    ("Payment-Mentioned", None, r"\b(payment|payments|pay|paid|direct debit)\b"),
    ("Retention-Offer", "A", r"\b(discount|fee-free|offer you|waive)\b"),
    ("Complaint", "C", r"\b(ridiculous|unacceptable|not happy|fed up|frustrat|annoying|embarrassing)\b"),
    ("Escalation-Request", "C", r"\b(manager|supervisor|escalate|complaint)\b"),
    ("Callback-Promised", "A", r"\b(call you back|call you within|callback)\b"),
    ("Digital-Channels", None, r"\b(app|online banking|website|browser|online)\b"),
    ("Vulnerable-Customer", "C", r"\b(lost my job|redundant|hospital|medical|passed away|has died|care home|struggling)\b"),
    ("Card-Replacement", "A", r"\b(new card|replacement card|reissue|ordered you a new one|new one)\b"),
    ("Recorded-Line-Disclosure", "A", r"\b(recorded)\b"),
    ("Contact-Details-Update", None, r"\b(new address|update my address|change my address|new phone number|contact details)\b"),
]

POSITIVE = re.compile(
    r"\b(thank|thanks|great|perfect|brilliant|lovely|good|relief|appreciate|helpful|kind|awesome|cheers|pleasure|welcome|happy to)\b",
    re.I,
)
NEGATIVE = re.compile(
    r"\b(not happy|unhappy|annoying|frustrat\w*|ridiculous|embarrassing|worried|worrying|scared|dreading|useless|"
    r"never|still hasn't|hasn't|haven't|can't|won't|don't recognise|didn't make|overcharged|wrong|declined|"
    r"crashes|broken|damaged|error|lost|struggling|stuck|tight|behind|sorry|fed up|long time|missing)\b",
    re.I,
)


# ---------------------------------------------------------------------------------------
# Composition.
# ---------------------------------------------------------------------------------------


def expand(rng, text):
    """Resolve every {a|b|c} group, innermost first."""
    pattern = re.compile(r"\{([^{}]*)\}")
    while True:
        m = pattern.search(text)
        if not m:
            return text
        choice = rng.choice(m.group(1).split("|"))
        text = text[: m.start()] + choice + text[m.end():]


def tidy(text):
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.?!])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    text = re.sub(r"([.?!])\s*,", r"\1", text)
    text = re.sub(r"^[,\s]+", "", text)
    text = re.sub(r",\s*$", ".", text)
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)
    if text and text.rstrip("»›")[-1:] not in (".", "?", "!"):
        text += "."
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    # Capitalise after a sentence end ("okay. so" -> "okay. So"), leaving "..." alone.
    text = re.sub(r"(?<!\.)([.?!] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    return text


def block(rng, turns, part):
    return [(role, expand(rng, text), part) for role, text in turns]


def split_tags(item):
    """An item may start with a string of scenario tags; untagged items fit any scenario."""
    if item and isinstance(item[0], str):
        return set(item[0].split()), item[1:]
    return set(), item


def fitting(items, tags):
    out = []
    for item in items:
        item_tags, turns = split_tags(item)
        if not item_tags or item_tags & tags:
            out.append(turns)
    return out


def compose(rng, label):
    spec = TYPES[label]
    parts = []  # (role, text, part)
    # Opening.
    opening = rng.random()
    if opening < 0.15:
        parts.append(("A", expand(rng, rng.choice(AGENT_GREETINGS)), "opening"))
        parts.append(("C", expand(rng, rng.choice(TRANSFERRED_IN)), "transfer"))
        parts.append(("A", expand(rng, rng.choice(TRANSFERRED_IN_ACK)), "transfer"))
    elif opening < 0.4:
        hello, ack = rng.choice(HELLO_PAIRS)
        parts.append(("C", expand(rng, hello), "opening"))
        parts.append(("A", expand(rng, ack), "opening"))
    else:
        parts.append(("A", expand(rng, rng.choice(AGENT_GREETINGS)), "opening"))

    tags, problem_turns = split_tags(rng.choice(spec["problems"]))
    problem = block(rng, problem_turns, "problem")
    short = rng.random() < 0.12  # a quick call: straight to the point, no small talk
    long = not short and rng.random() < 0.12  # a thorough agent and a chatty customer
    verification = block(rng, rng.choice(VERIFICATIONS), "verification") if rng.random() < (0.5 if short else 0.85) else []
    if rng.random() < 0.6:
        parts += problem
        if verification:
            parts.append(("A", expand(rng, "{Okay|Right|Sure|No problem}{, I can help with that|, let's get that sorted|}."), "verification"))
        parts += verification
    else:
        if verification:
            parts.append(("C", expand(rng, "{Hi|Hello}, {I need some help with my account|I've got a problem with my account|I need to sort something out}."), "opening"))
        parts += verification
        if verification:
            parts.append(("A", expand(rng, "{So what can I help you with today|Now, how can I help|What's the problem today}?"), "verification"))
        parts += problem

    # Details, in random order, with an optional hold somewhere among them.
    pool = fitting(spec["details"], tags)
    k = 0 if short else len(pool) if long else rng.randint(0, min(5, len(pool)))
    details = rng.sample(pool, k=k)
    segments = [block(rng, d, "detail") for d in details]
    if not short and rng.random() < (0.8 if long else 0.4):
        hold = [
            ("A", expand(rng, rng.choice(HOLD_OUT)[1]), "hold_out"),
            ("C", expand(rng, rng.choice(HOLD_OK)), "hold"),
            ("A", expand(rng, rng.choice(HOLD_BACK)), "hold_back"),
        ]
        if rng.random() < 0.5:
            hold.append(("C", expand(rng, rng.choice(HOLD_BACK_ACK)), "hold"))
        segments.insert(rng.randint(0, len(segments)), hold)
    for s in segments:
        parts += s

    # Resolution, or (sometimes) a transfer out to the specialist team.
    if rng.random() < 0.12:
        team = spec["transfer_team"]
        parts.append(("A", expand(rng, f"{{This is something our {team} team handles|That needs to go to our {team} team}}, ‹I'm going to transfer you across now›. {{Please stay on the line|Bear with me|It might take a minute}}."), "transfer"))
        parts.append(("C", expand(rng, "{Okay|Fine|Alright}{, thanks|, as long as I don't get cut off|}."), "transfer"))
        return parts
    parts += block(rng, rng.choice(fitting(spec["resolutions"], tags)), "resolution")
    if short:
        parts.append(("A", expand(rng, "{Anything else|Is that everything} today?"), "closing"))
        parts.append(("C", expand(rng, "{No, that's it, thanks|No, thank you}. {Bye|Bye bye}."), "closing"))
        return parts

    pool = fitting(spec["followups"], tags)
    followups = rng.sample(pool, k=min(len(pool), 2 if long else rng.choice([0, 0, 1, 1, 2])))
    for f in followups:
        parts += block(rng, f, "followup")
    for secondary in rng.sample(SECONDARY, k=2 if long else int(rng.random() < 0.25)):
        parts += block(rng, secondary, "secondary")
    if long or rng.random() < 0.85:
        parts += block(rng, rng.choice(CLOSINGS), "closing")
    return parts


def strip_markers(text):
    """Remove «» and ‹› markers, returning clean text and the (kind, begin, end) spans."""
    out, spans, stack = [], [], []
    for ch in text:
        if ch in "«‹":
            stack.append((ch, len("".join(out))))
        elif ch in "»›":
            kind, begin = stack.pop()
            spans.append(("issue" if kind == "«" else "action", begin, len("".join(out))))
        else:
            out.append(ch)
    return "".join(out), spans


def sentiment_of(text):
    pos = len(POSITIVE.findall(text))
    neg = len(NEGATIVE.findall(text))
    if pos and neg and pos == neg:
        return "MIXED"
    if neg > pos:
        return "NEGATIVE"
    if pos > neg:
        return "POSITIVE"
    return "NEUTRAL"


SCORE = {"POSITIVE": 5.0, "NEGATIVE": -5.0, "NEUTRAL": 0.0, "MIXED": 0.0}


def make_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def period_scores(turns, role, end):
    """SentimentByPeriod.QUARTER for one role, weighted by talk time in each quarter."""
    quarter = end / 4
    out = []
    for q in range(4):
        qb, qe = round(q * quarter), round((q + 1) * quarter)
        num = den = 0.0
        for t in turns:
            if t["ParticipantId"] != role:
                continue
            overlap = min(qe, t["EndOffsetMillis"]) - max(qb, t["BeginOffsetMillis"])
            if overlap > 0:
                num += SCORE[t["Sentiment"]] * overlap
                den += overlap
        out.append({"BeginOffsetMillis": qb, "EndOffsetMillis": qe, "Score": round(num / den, 1) if den else 0})
    return out


def build_document(rng, label, contact_id, instance_id, connect_at, frustrated):
    parts = compose(rng, label)
    # Frustrated customers sometimes add a line of complaint after the problem statement.
    if frustrated and rng.random() < 0.5:
        idx = max(i for i, p in enumerate(parts) if p[2] == "problem") + 1
        parts.insert(idx, ("C", expand(rng, "{Honestly, this is really frustrating|This is ridiculous|To be honest, this isn't good enough|This is really not on}{, I've already called once about it|, I shouldn't have to chase this|}."), "problem"))
        parts.insert(idx + 1, ("A", expand(rng, "{I completely understand|I'm sorry, I understand}{, let's get it sorted|, I'll do what I can|}."), "problem"))
    wpm = {"AGENT": rng.randint(140, 190), "CUSTOMER": rng.randint(115, 180)}
    turns, holds = [], []
    clock = rng.randint(300, 3500)
    for idx, (role, raw, part) in enumerate(parts):
        content, spans = strip_markers(tidy(raw))
        content = content[:1].upper() + content[1:]
        pid = "AGENT" if role == "A" else "CUSTOMER"
        words = max(1, len(content.split()))
        dur = int(words * 60000 / wpm[pid] * rng.uniform(0.85, 1.2)) + rng.randint(150, 500)
        begin = clock
        end = begin + dur
        turn = {
            "BeginOffsetMillis": begin,
            "Content": content,
            "EndOffsetMillis": end,
            "Id": make_uuid(rng),
            "LoudnessScore": [round(rng.uniform(62, 88), 2) for _ in range(max(1, dur // 1000))],
            "ParticipantId": pid,
            "Sentiment": sentiment_of(content),
        }
        key = "IssuesDetected" if pid == "CUSTOMER" else "OutcomesDetected"
        for kind, b, e in spans:
            name = key if kind == "issue" else "ActionItemsDetected"
            turn.setdefault(name, []).append(
                {"CharacterOffsets": {"BeginOffsetChar": b, "EndOffsetChar": e}, "Text": content[b:e]}
            )
        redactions = []
        for m in re.finditer(re.escape("[PII]"), content):
            rb = begin + int(dur * m.start() / max(1, len(content)))
            re_ = min(end, rb + rng.randint(350, 1400))
            redactions.append({"BeginOffsetMillis": rb, "EndOffsetMillis": re_})
        if redactions:
            turn["Redaction"] = {"RedactedTimestamps": redactions}
        turns.append(turn)
        gap = rng.randint(150, 1300)
        if part == "hold" and idx > 0 and parts[idx - 1][2] == "hold_out":
            gap = rng.randint(20000, 150000)  # the hold itself: silence until the agent is back
        elif rng.random() < 0.05:
            gap = rng.randint(3000, 6000)  # someone thinks, types, or looks for a card
        clock = end + gap
    total = turns[-1]["EndOffsetMillis"] + rng.randint(200, 2500)

    nontalk = []
    prev_end = 0
    for t in turns:
        if t["BeginOffsetMillis"] - prev_end >= 3000:
            nontalk.append({
                "BeginOffsetMillis": prev_end,
                "DurationMillis": t["BeginOffsetMillis"] - prev_end,
                "EndOffsetMillis": t["BeginOffsetMillis"],
            })
        prev_end = max(prev_end, t["EndOffsetMillis"])

    talk = {r: sum(t["EndOffsetMillis"] - t["BeginOffsetMillis"] for t in turns if t["ParticipantId"] == r) for r in ("AGENT", "CUSTOMER")}
    words = {r: sum(len(t["Content"].split()) for t in turns if t["ParticipantId"] == r) for r in ("AGENT", "CUSTOMER")}
    overall = {}
    for r in ("AGENT", "CUSTOMER"):
        num = sum(SCORE[t["Sentiment"]] * (t["EndOffsetMillis"] - t["BeginOffsetMillis"]) for t in turns if t["ParticipantId"] == r)
        overall[r] = round(num / talk[r], 1) if talk[r] else 0
    last_end = {r: max((t["EndOffsetMillis"] for t in turns if t["ParticipantId"] == r), default=total) for r in ("AGENT", "CUSTOMER")}

    matched, details = [], {}
    for name, role, pattern in CATEGORY_RULES:
        rx = re.compile(pattern, re.I)
        hits = [t for t in turns if (role is None or t["ParticipantId"] == ("AGENT" if role == "A" else "CUSTOMER")) and rx.search(t["Content"])]
        if hits:
            matched.append(name)
            details[name] = {"PointsOfInterest": [{"BeginOffsetMillis": t["BeginOffsetMillis"], "EndOffsetMillis": t["EndOffsetMillis"]} for t in hits[:3]]}
    if nontalk and max(n["DurationMillis"] for n in nontalk) >= 20000:
        matched.append("Long-Hold")
        details["Long-Hold"] = {"PointsOfInterest": [{"BeginOffsetMillis": n["BeginOffsetMillis"], "EndOffsetMillis": n["EndOffsetMillis"]} for n in nontalk if n["DurationMillis"] >= 20000]}
    if sum(1 for t in turns if t["ParticipantId"] == "CUSTOMER" and t["Sentiment"] == "NEGATIVE") >= 2:
        matched.append("Negative-Customer-Sentiment")
        details["Negative-Customer-Sentiment"] = {"PointsOfInterest": []}

    connect_ts = connect_at.strftime("%Y%m%dT%H:%M_UTC")
    doc = {
        "AccountId": ACCOUNT_ID,
        "Categories": {"MatchedCategories": matched, "MatchedDetails": details},
        "Channel": "VOICE",
        "ContentMetadata": {
            "Output": "Redacted",
            "RedactionTypes": ["PII"],
            "RedactionTypesMetadata": {"PII": {"RedactionMaskMode": "PII"}},
        },
        "ConversationCharacteristics": {
            "Interruptions": {"InterruptionsByInterrupter": {}, "TotalCount": 0, "TotalTimeMillis": 0},
            "NonTalkTime": {"Instances": nontalk, "TotalTimeMillis": sum(n["DurationMillis"] for n in nontalk)},
            "Sentiment": {
                "OverallSentiment": overall,
                "SentimentByPeriod": {"QUARTER": {r: period_scores(turns, r, last_end[r]) for r in ("AGENT", "CUSTOMER")}},
            },
            "TalkSpeed": {"DetailsByParticipant": {r: {"AverageWordsPerMinute": round(words[r] * 60000 / talk[r]) if talk[r] else 0} for r in ("AGENT", "CUSTOMER")}},
            "TalkTime": {
                "DetailsByParticipant": {r: {"TotalTimeMillis": talk[r]} for r in ("AGENT", "CUSTOMER")},
                "TotalTimeMillis": talk["AGENT"] + talk["CUSTOMER"],
            },
            "TotalConversationDurationMillis": total,
        },
        "CustomModels": [],
        "CustomerMetadata": {
            "ContactId": contact_id,
            "InputS3Uri": f"s3://{BUCKET}/connect/calltype-demo/CallRecordings/{connect_at:%Y/%m/%d}/{contact_id}_{connect_ts}.wav",
            "InstanceId": instance_id,
        },
        "JobStatus": "COMPLETED",
        "LanguageCode": "en-US",
        "Participants": [
            {"ParticipantId": "CUSTOMER", "ParticipantRole": "CUSTOMER"},
            {"ParticipantId": "AGENT", "ParticipantRole": "AGENT"},
        ],
        "Transcript": turns,
        "Version": "1.1.0",
    }
    return doc, total


def generate(seed, per_type, out_dir):
    rng = random.Random(seed)
    instance_id = make_uuid(rng)
    plan = [label for label in LABELS for _ in range(per_type)]
    rng.shuffle(plan)
    rows = []
    for i, label in enumerate(plan):
        for _attempt in range(50):
            state = rng.getstate()
            contact_id = make_uuid(rng)
            day = DAYS[i % len(DAYS)]
            connect_at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(
                seconds=rng.randint(8 * 3600, 19 * 3600 + 1800)
            )
            frustrated = rng.random() < TYPES[label]["frustration"]
            doc, total = build_document(rng, label, contact_id, instance_id, connect_at, frustrated)
            if 6 <= len(doc["Transcript"]) <= 40:
                break
            rng.setstate(state)
            rng.random()  # move on so the retry differs
        else:
            raise SystemExit(f"could not compose a {label} call within 6..40 turns")
        written = connect_at + dt.timedelta(milliseconds=total) + dt.timedelta(seconds=rng.randint(25, 140))
        iso = written.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({
            "contact_id": contact_id,
            "label": label,
            "contact_date": connect_at.date().isoformat(),
            "connected_at": connect_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "analysis_ts": iso,
            "n_turns": len(doc["Transcript"]),
            "duration_ms": total,
            "file": f"calls/{contact_id}_analysis_redacted_{iso.replace(':', '_')}.json",
            "doc": doc,
        })

    # Stratified 70/30 split, fixed by the seed.
    for label in LABELS:
        members = sorted((r for r in rows if r["label"] == label), key=lambda r: r["contact_id"])
        rng.shuffle(members)
        n_test = round(len(members) * 0.3)
        for j, r in enumerate(members):
            r["split"] = "test" if j < n_test else "train"

    calls = out_dir / "calls"
    if calls.exists():
        shutil.rmtree(calls)
    calls.mkdir(parents=True)
    rows.sort(key=lambda r: (r["connected_at"], r["contact_id"]))
    for r in rows:
        (out_dir / r["file"]).write_text(json.dumps(r["doc"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    with open(out_dir / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["contact_id", "label", "split"])
        for r in rows:
            w.writerow([r["contact_id"], r["label"], r["split"]])
    with open(out_dir / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        cols = ["contact_id", "label", "split", "contact_date", "connected_at", "analysis_ts", "n_turns", "duration_ms", "categories", "s3_key", "file"]
        w.writerow(cols)
        for r in rows:
            w.writerow([
                r["contact_id"], r["label"], r["split"], r["contact_date"], r["connected_at"], r["analysis_ts"],
                r["n_turns"], r["duration_ms"], ";".join(r["doc"]["Categories"]["MatchedCategories"]),
                s3_key(r), r["file"],
            ])
    write_events(rng, out_dir, rows)
    return rows


def s3_key(row):
    d = row["contact_date"].replace("-", "/")
    return f"Analysis/Voice/Redacted/{d}/{row['contact_id']}_analysis_redacted_{row['analysis_ts']}.json"


def write_events(rng, out_dir, rows):
    """Real-shaped AWS events pointing at one sample call (the first of 2026-11-20)."""
    row = next(r for r in rows if r["contact_date"] == "2026-11-20")
    body = (out_dir / row["file"]).read_bytes()
    key = s3_key(row)
    # S3 notifications URL-encode the key like a form value (':' -> %3A, ' ' -> '+').
    encoded = urllib.parse.quote_plus(key, safe="/")
    etag = hashlib.md5(body).hexdigest()
    event_time = dt.datetime.strptime(row["analysis_ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    sequencer = f"{rng.getrandbits(64):016X}"[:18].ljust(18, "0")
    request_id = f"{rng.getrandbits(64):016X}"
    host_id = hashlib.sha256(request_id.encode()).hexdigest()[:64]
    s3_record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": event_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randint(0, 999):03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLEROLEID:amazon-connect-contact-lens"},
        "requestParameters": {"sourceIPAddress": "10.0.12.34"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": host_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "calltype-contact-lens-analysis",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {"key": encoded, "size": len(body), "eTag": etag, "sequencer": sequencer},
        },
    }
    s3_event = {"Records": [s3_record]}
    sqs_body = json.dumps(s3_event, separators=(",", ":"))
    sent = int(event_time.timestamp() * 1000) + 180
    sqs_event = {
        "Records": [
            {
                "messageId": make_uuid(rng),
                "receiptHandle": "AQEB" + hashlib.sha256(sqs_body.encode()).hexdigest() + "EXAMPLE==",
                "body": sqs_body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent),
                    "SenderId": "AIDAJHIPRHEMV73VRJEBU",
                    "ApproximateFirstReceiveTimestamp": str(sent + 41),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(sqs_body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:calltype-ingest",
                "awsRegion": REGION,
            }
        ]
    }
    eventbridge = {
        "version": "0",
        "id": make_uuid(rng),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": len(body), "etag": etag, "sequencer": sequencer},
            "request-id": request_id,
            "requester": ACCOUNT_ID,
            "source-ip-address": "10.0.12.34",
            "reason": "PutObject",
        },
    }
    schedule = {
        "version": "0",
        "id": make_uuid(rng),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": "2026-11-22T23:55:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/calltype-ClassifyFunctionSchedule-EXAMPLE"],
        "detail": {},
    }
    events = out_dir / "events"
    events.mkdir(exist_ok=True)
    for name, payload in [
        ("sqs-s3-notification.json", sqs_event),
        ("s3-notification.json", s3_event),
        ("eventbridge-object-created.json", eventbridge),
        ("classify-schedule.json", schedule),
    ]:
        (events / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--per-type", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    rows = generate(args.seed, args.per_type, args.out)
    n_train = sum(r["split"] == "train" for r in rows)
    print(f"wrote {len(rows)} calls ({n_train} train, {len(rows) - n_train} test) to {args.out / 'calls'}")


if __name__ == "__main__":
    main()
