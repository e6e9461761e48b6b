"""Worked PDU vectors shared by the decode and encode tests.

Each vector names its source. ``canonical`` means ``encode(decode(hex)) ==
hex`` byte for byte (a vector is not canonical when the wire carries
something a decoded value cannot express, e.g. a time zone of "-0"
quarter-hours). ``expect`` lists :func:`pdu.to_json` keys the decoded message
must have (other keys are not checked by the table test).

"constructed" vectors were built from TS 23.040 field by field and
cross-checked with python-gsmmodem's decoder where it supports the feature
(it does not decode enhanced TP-VP nor the ``* #`` semi-octets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Vector:
    name: str
    hex: str
    source: str
    smsc: bool = True
    canonical: bool = True
    expect: dict[str, Any] = field(default_factory=dict)


VECTORS: tuple[Vector, ...] = (
    Vector(
        "dreamfabric-deliver",
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
        "dreamfabric.com 'SMS and the PDU format' SMS-DELIVER example (README's main example)",
        canonical=False,  # time zone octet 08 is "-0 quarters"; re-encoded as 00
        expect={
            "type": "deliver",
            "smsc": "+31624000000",
            "sender": "+31641600986",
            "encoding": "gsm7",
            "text": "How are you?",
            "data": None,
            "timestamp": "2002-08-26T19:37:41+00:00",
            "concat": None,
            "message_class": None,
            "reference": None,
            "status": None,
        },
    ),
    Vector(
        "dreamfabric-submit",
        "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
        "dreamfabric.com SMS-SUBMIT example (relative TP-VP AA = 4 days)",
        expect={
            "type": "submit",
            "smsc": None,
            "recipient": "+46708251358",
            "text": "hellohello",
            "reference": 0,
            "timestamp": None,
        },
    ),
    Vector(
        "developershome-submit",
        "079153588077010111000C915358508282420000A71154747A0E4ACF41F4F29C9E769F4121",
        "developershome.com AT+CMGS PDU-mode example (TP-VP A7 = 24 h)",
        expect={
            "type": "submit",
            "smsc": "+358508771010",
            "recipient": "+358505282824",
            "text": "This is testing !",
        },
    ),
    Vector(
        "developershome-deliver",
        "0791535880770101200C915358508282420000691170413375081154747A0E4ACF41F4F29C9E769F4121",
        "developershome.com +CMT example (first octet 0x20: TP-SRI, more messages waiting; "
        "year 96 read as 1996)",
        canonical=False,  # time zone "-0"
        expect={
            "type": "deliver",
            "sender": "+358505282824",
            "text": "This is testing !",
            "timestamp": "1996-11-07T14:33:57+00:00",
        },
    ),
    Vector(
        "amro-status-report",
        "06000B910221815716F2709021510121807090215101718000",
        "amro.blogspot.com 'receiving an SMS status report' +CDS capture (bare TPDU)",
        smsc=False,
        expect={
            "type": "status-report",
            "smsc": None,
            "recipient": "+20121875612",
            "timestamp": "2007-09-12T15:10:12+02:00",
            "reference": 0,
            "status": 0,
            "encoding": None,
            "text": None,
        },
    ),
    Vector(
        "twilio-binary-command",
        "07912160130300F4040481926300046211123295030006DEADBEEF00FF",
        "constructed: a Programmable Wireless binary Command from short code 2936, DCS 0x04",
        expect={
            "type": "deliver",
            "smsc": "+12063130004",
            "sender": "2936",
            "encoding": "8bit",
            "text": None,
            "data": "deadbeef00ff",
            "timestamp": "2026-11-21T23:59:30+00:00",
        },
    ),
    Vector(
        "supersim-text-command",
        "079144775810065004038100F000006230405060708A10F2B2F8FDA683DCEF3B6883C26F52",
        "constructed: a Super SIM Command from 000 with extension chars { } (UTC-7)",
        expect={
            "sender": "000",
            "text": "reboot now {x}",
            "timestamp": "2026-03-04T05:06:07-07:00",
        },
    ),
    Vector(
        "alphanumeric-sender",
        "0791447758100650040BD0D47B9A9D7E0300005221133295953213D9775D0E1ABFC965507A0E8AC966B49A0D",
        "constructed: alphanumeric TP-OA 'Twilio' (11 semi-octets), UTC+5:45",
        expect={
            "sender": "Twilio",
            "text": "Your code is 123456",
            "timestamp": "2025-12-31T23:59:59+05:45",
        },
    ),
    Vector(
        "ucs2-surrogate-pair",
        "00040C9144770009103200084220922100004012041F044004380432043504420020D83DDE00",
        "constructed: UCS-2 (UTF-16) text with a non-BMP emoji, 29 Feb 2024",
        expect={"encoding": "ucs2", "text": "Привет 😀", "sender": "+447700900123"},
    ),
    Vector(
        "concat8-part1",
        "0791447758100650440C91447700091032000062111232950300A005000342020182C16030180C0683"
        + "C16030180C0683" * 18,
        "constructed: part 1/2 with 8-bit reference 0x42, 153 septets after a 6-octet UDH",
        expect={"concat": {"ref": 0x42, "total": 2, "seq": 1}, "text": "A" * 153},
    ),
    Vector(
        "concat16-ucs2",
        "00440C9144770009103200086211123295030017060804123403030047007200FC00DF0065002065E5672C",
        "constructed: UCS-2 part 3/3, 16-bit reference 0x1234",
        expect={"concat": {"ref": 0x1234, "total": 3, "seq": 3}, "text": "Grüße 日本"},
    ),
    Vector(
        "wap-ports-8bit",
        "00440481926300F5621112329503000A0605040B8423F0010603",
        "constructed: 16-bit application ports 9200 -> 2948 (WAP push), DCS 0xF5 (8-bit, class 1)",
        expect={
            "encoding": "8bit",
            "ports": {"src": 9200, "dst": 2948},
            "data": "010603",
            "message_class": 1,
        },
    ),
    Vector(
        "class0-flash",
        "000404819263001062111232950300064676788E0E01",
        "constructed: DCS 0x10, class 0 (flash)",
        expect={"text": "Flash!", "message_class": 0},
    ),
    Vector(
        "mwi-voicemail-active",
        "00040C9194710167000000C86211123295030000",
        "constructed: DCS 0xC8 message waiting (discard), voicemail active, empty text",
        expect={"text": "", "encoding": "gsm7", "message_class": None},
    ),
    Vector(
        "submit-srr-absolute-vp",
        "00392A0481926300006211222100000A02EF35",
        "constructed: SUBMIT to 2936, TP-SRR, TP-MR 42, absolute TP-VP (UTC-5)",
        expect={"type": "submit", "recipient": "2936", "reference": 42, "text": "ok"},
    ),
    Vector(
        "submit-enhanced-vp",
        "000900038100F00000023C000000000004F0B7FB0C",
        "constructed: SUBMIT to 000 with enhanced TP-VP (format 2: 60 seconds)",
        expect={"recipient": "000", "text": "pong"},
    ),
    Vector(
        "submit-binary",
        "0001000481926300040A00010203040506070809",
        "constructed: binary reply to 2936, DCS 0x04 (what the bridge sends)",
        expect={"encoding": "8bit", "data": "00010203040506070809"},
    ),
    Vector(
        "status-report-with-pi",
        "07912160130300F4062A0481926362111232950300621112329553004607000007653C3C2D2F9301",
        "constructed: STATUS-REPORT, TP-ST 0x46 (validity expired), TP-PI with PID/DCS/UDL",
        expect={
            "type": "status-report",
            "status": 0x46,
            "reference": 42,
            "text": "expired",
            "encoding": "gsm7",
        },
    ),
    Vector(
        "semi-octets-star-hash",
        "00010005811A00FB00000178",
        "constructed: TP-DA '*100#' (semi-octets A and B), odd length with F filler",
        expect={"recipient": "*100#", "text": "x"},
    ),
    Vector(
        "shekharbiradar-concat-submit",
        "0041000C911999083196770000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668"
        "FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683"
        "D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936"
        "284C06B5D3EE741B642FBBD3E1360B14AFA7E7",
        "shekharbiradar.wordpress.com 'Send and Receive Concatenated SMS in PDU mode' "
        "(AT+CMGS=153, part 1/3 with UDH 050003000301, 153 septets)",
        expect={
            "type": "submit",
            "recipient": "+919980136977",
            "concat": {"ref": 0, "total": 3, "seq": 1},
            "text": "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod "
            "tempor incididunt ut labore et dolore magna aliqua.Ut enim ad minim veniam, quis",
        },
    ),
    Vector(
        "9cbs-submit-7bit",
        "0011000781214356F70000AA05E8329BFD06",
        "9cbs.com 'SMS PDU mode, data format and length calculation' (AT+CMGS=17, 'hello')",
        expect={"recipient": "1234657", "text": "hello", "encoding": "gsm7"},
    ),
    Vector(
        "9cbs-submit-8bit-class2",
        "079194710167000011000781214365F700F6AA0568656C6C6F",
        "9cbs.com same page: 8-bit (DCS F6, class 2) 'hello' with SMSC +491710760000",
        expect={
            "smsc": "+491710760000",
            "recipient": "1234567",
            "encoding": "8bit",
            "data": "68656c6c6f",
            "message_class": 2,
        },
    ),
    Vector(
        "gsmmodem-issue15-status-report",
        "0006230E9126983575169498610103409544C26101034095448200",
        "python-gsmmodem issue #15: a real +CMGR status report from an Indonesian network "
        "(TP-SCTS time zone octet C2: units semi-octet C, read as 2 * 10 + 12 = +08:00; "
        "TP-DT zone 82 = +07:00)",
        canonical=False,  # the zone re-encodes as proper BCD (23)
        expect={
            "type": "status-report",
            "recipient": "+62895357614989",
            "reference": 35,
            "status": 0,
            "timestamp": "2016-10-30T04:59:44+08:00",
        },
    ),
    Vector(
        "gammu-issue483-dcs-fb",
        "06914977000030200B914977745010F700FB918050809053221DB15CEC868BC9663018080402816432DD0C"
        "060281A4412A159904",
        "gammu issue #483: a real SMS-DELIVER from a Sri Lankan network (SMSC with an even "
        "digit count, TP-SRI set, DCS FB: group 1111 with reserved bit 3 set, GSM 7-bit, "
        "class 3; libGammu reads it as 8-bit)",
        expect={
            "smsc": "+9477000003",
            "sender": "+94774705017",
            "encoding": "gsm7",
            "text": "1917812300     22:30   RATTHI",
            "message_class": 3,
            "timestamp": "2019-08-05T08:09:35+05:30",
        },
    ),
    Vector(
        "alt-cellular-gsm-concat-part2",
        "07910221020020F040048167383D1170113232848040140500033A0202EC6176BD0C4ACF4134170E06",
        "alt.cellular.gsm 'Erorr In Compile PDU' (2008): a real part 2/2 from short code 7683, "
        "TP-MMS 'more messages', TP-PID 3D (SC specific), DCS 11 (class 1), UDH 0500033A0202",
        expect={
            "smsc": "+20122000020",
            "sender": "7683",
            "text": "value is 4.80",
            "concat": {"ref": 0x3A, "total": 2, "seq": 2},
            "message_class": 1,
            "timestamp": "2007-11-23T23:48:08+01:00",
        },
    ),
    Vector(
        "python-messaging-issue44-deliver",
        "0791198954800710040C9119678197692100007101501145402202E833",
        "python-messaging issue #44: a real +CMGR from an Indian network (time zone +22 "
        "quarters = +05:30, as the modem's text mode shows '17/10/05,11:54:04+22')",
        expect={
            "smsc": "+919845087001",
            "sender": "+917618799612",
            "text": "hg",
            "timestamp": "2017-10-05T11:54:04+05:30",
        },
    ),
    Vector(
        "mobiletidings-mwi-submit",
        "0001AB0B915121551532F400C80F3190BB7C07D9DFE971B91D4EB301",
        "mobiletidings.com 'Setting Voicemail Waiting Indication via SMS' (AT+CMGS=27, DCS C8: "
        "message waiting, discard, voicemail active)",
        expect={
            "type": "submit",
            "recipient": "+15125551234",
            "reference": 0xAB,
            "text": "1 new voicemail",
            "encoding": "gsm7",
        },
    ),
    Vector(
        "address-length-counts-filler",
        "00040C914477009001F300002080629173140005E8329BFD06",
        "constructed: TP-OA length 12 counts the F filler of an 11-digit number; TS 23.040 "
        "§9.1.2.3 says the F is ignored (libGammu and python-gsmmodem read +44770009103)",
        canonical=False,  # re-encoded with length 11
        expect={"sender": "+44770009103", "text": "hello"},
    ),
    Vector(
        "gsmmodem-issue17-concat-1-of-1",
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E06"
        "4941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87"
        "A7E565D0DB0D82C55EB0DB4B068BCD5C20",
        "python-gsmmodem issue #17: a real South African operator message (SMSC +2781191 in a "
        "5-octet field, TP-OA 2781188 TON unknown, UDH 050003C30101: concatenation 1 of 1; "
        "the fill bit after the UDH is 1, which a receiver ignores)",
        canonical=False,  # we send the fill bit as 0
        expect={
            "smsc": "+2781191",
            "sender": "2781188",
            "concat": {"ref": 0xC3, "total": 1, "seq": 1},
            "text": "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on "
            "01/07/2013. ",
            "timestamp": "2013-06-25T16:40:48+02:00",
        },
    ),
    Vector(
        "node-pdu-issue2-vivo-mwi",
        "07915510100102910407D1D6A4F50900C8715091415320291FD6F7B80CA297DBA018C8FDB68751F314A8"
        "5D76CFC3E7721BE59EA700",
        "node-pdu issue #2: a real Brazilian operator voicemail notice (TP-OA D1: alphanumeric "
        "'VIVO' in 7 semi-octets, NPI 1; DCS C8: message waiting, discard, voicemail active; "
        "zone -03:00)",
        expect={
            "sender": "VIVO",
            "encoding": "gsm7",
            "text": "Voce tem 1 nova(s) mensagem(ns)",
            "message_class": None,
            "timestamp": "2017-05-19T14:35:02-03:00",
        },
    ),
    Vector(
        "doublecontact-issue49-vodafone-ucs2-part3",
        "07918350000014F0400ED0D637396C7EBBCB000802601190106321840500038803030020043F0430043A"
        "0435044204300020043F043E043F043E0432043D04560442044C00200440043004450443043D043E043A"
        "00200432045604340020003100300030002004330440043804320435043D044C0020044204300020043D"
        "043004310435044004560442044C0020002A003100300031002A0034003400340023",
        "doublecontact issue #49: a real Ukrainian operator part 3/3 (TP-OA 0E D0: 8-letter "
        "alphanumeric 'Vodafone', UCS-2 after UDH 0500038803 03)",
        expect={
            "smsc": "+38050000410",
            "sender": "Vodafone",
            "encoding": "ucs2",
            "concat": {"ref": 0x88, "total": 3, "seq": 3},
            "text": " пакета поповніть рахунок від 100 гривень та наберіть *101*444#",
        },
    ),
    Vector(
        "pdulib-issue39-czech-ucs2-part1",
        "0791246020099990640681991976000832602111455580840500033107010044006F0073006C00650063"
        "0068006C00690020006A0073006D0065002000730065002C0020007A006500200064006E006500730020"
        "006D00610074006500200063006F0020006F0073006C00610076006F007600610074002100200041002000"
        "700072006F0074006F007A006500200064006100720065006B00200070",
        "PDUlib issue #39: a real Czech operator +CMGL part 1/7 (TP-OA 999167 TON unknown, "
        "UCS-2, 140 octets of TP-UD)",
        expect={
            "smsc": "+420602909909",
            "sender": "999167",
            "encoding": "ucs2",
            "concat": {"ref": 49, "total": 7, "seq": 1},
            "text": "Doslechli jsme se, ze dnes mate co oslavovat! A protoze darek p",
            "timestamp": "2023-06-12T11:54:55+02:00",
        },
    ),
    Vector(
        "gsmmodem-issue51-twilio-smsc-malformed-udh",
        "07912160130320F5440B917130263521F600005160101235458AA005C01BF40201E8E5393D2C1E93CBE6"
        "33BD3CA787C56372D97CA697E7F4B0784C2E9BCFF4F29C1E168FC965F3995E9ED3C3E231B96C3ED3CB73"
        "7A583C2697CD677A794E0F8BC7E4B2F94C2FCFE961F1985C369FE9E5393D2C1E93CBE633BD3CA787C563"
        "72D97CA697E7F4B0784C2E9BCFF4F29C1E168FC965F3995E9ED3C3E231B96C3ED3CB737A583C2697CD",
        "python-gsmmodem issue #51: a real SMS-DELIVER through Twilio's SMSC +12063130025 "
        "(UDHL 5 whose element C0 claims 27 octets: TS 23.040 9.2.3.24 says the whole header "
        "is ignored; the 153 septets after it still read; libGammu refuses the PDU)",
        canonical=False,  # re-encoded without the ignored header
        expect={
            "smsc": "+12063130025",
            "sender": "+17036253126",
            "concat": None,
            "text": "testabcdefg" * 13 + "testabcdef",
            "timestamp": "2015-06-01T21:53:54-07:00",
        },
    ),
    Vector(
        "chan-dongle-issue87-alphanumeric-11",
        "07913619070010730414D0C13AFDCD7C87C9CD201600002170202284432374D0180CE682C1407079191E"
        "4E93416379999CA6CF41F7F01CC47E87C9653288FE06D5E5A0F65B9C66974720580E66A3E56EB55B2D06"
        "12E741B01CCC46B3E56E38DACD05A2CAC3E332C8F9D68164B61A6C06CBC96620D8ED0593BD64B0980C14"
        "83E96A3068D305",
        "asterisk-chan-dongle issue #87: a real Philippine operator message that chan-dongle "
        "could not parse ('Can't parse OA'): TP-OA 14 D0, the 11-letter name 'AutoLoadMAX' "
        "in 20 semi-octets",
        expect={
            "smsc": "+639170000137",
            "sender": "AutoLoadMAX",
            "text": "P100.00 prepaid credits was loaded to ur mobile# 09064975751 by "
            "09064697847. Trace No: 265030923 07/02/2012 10:50PM.",
            "timestamp": "2012-07-02T22:48:34+08:00",
        },
    ),
)
