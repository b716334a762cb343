#!/bin/bash
# mkprofile.sh HOME SERVER KEY MEDIA [USER PASS]
# Writes an OBS 29 profile and scene collection under HOME/.config/obs-studio so that
# `obs --startstreaming` publishes at once: a custom RTMP server (rtmp_custom service), a colour
# source plus a looping media file (video + a tone), no first-run wizard, no update checks.
# Environment:
#   KEYINT=N    Advanced output mode with x264 keyint_sec=N (default: Simple mode, which for a
#               custom server leaves x264 at keyint 250, i.e. 10 s at 25 fps)
#   RECONNECT=true|false   OBS's automatic reconnect (default false)
set -euo pipefail
H=$1 SERVER=$2 KEY=$3 MEDIA=$4 USER_NAME=${5:-} PASS=${6:-}
C=$H/.config/obs-studio
AUTH=false
[ -n "$USER_NAME" ] && AUTH=true
rm -rf "$C"
mkdir -p "$C/basic/profiles/sg" "$C/basic/scenes" "$C/logs"

# FirstRun + LastVersion keep the auto-configuration wizard and "what's new" away.
cat >"$C/global.ini" <<EOT
[General]
Pre19Defaults=false
Pre21Defaults=false
Pre23Defaults=false
Pre24.1Defaults=false
FirstRun=true
LastVersion=486539266
EnableAutoUpdates=false
ConfirmOnExit=false
WarnBeforeStartingStream=false
WarnBeforeStoppingStream=false
[Basic]
Profile=sg
ProfileDir=sg
SceneCollection=sg
SceneCollectionFile=sg
ConfigOnNewProfile=false
[BasicWindow]
SysTrayEnabled=true
SysTrayWhenStarted=true
PreviewEnabled=false
EOT

MODE=Simple
[ -n "${KEYINT:-}" ] && MODE=Advanced
cat >"$C/basic/profiles/sg/basic.ini" <<EOT
[General]
Name=sg
[Output]
Mode=$MODE
Reconnect=${RECONNECT:-false}
RetryDelay=2
MaxRetries=20
[SimpleOutput]
VBitrate=800
ABitrate=96
StreamEncoder=x264
Preset=veryfast
UseAdvanced=false
[AdvOut]
Encoder=obs_x264
TrackIndex=1
ApplyServiceSettings=true
[Video]
BaseCX=640
BaseCY=360
OutputCX=640
OutputCY=360
FPSType=1
FPSInt=25
[Audio]
SampleRate=48000
ChannelSetup=Stereo
EOT
if [ -n "${KEYINT:-}" ]; then
  echo "{\"bitrate\":800,\"keyint_sec\":$KEYINT,\"preset\":\"veryfast\",\"rate_control\":\"CBR\"}" \
    >"$C/basic/profiles/sg/streamEncoder.json"
fi

cat >"$C/basic/profiles/sg/service.json" <<EOT
{"type":"rtmp_custom","settings":{"server":"$SERVER","key":"$KEY","use_auth":$AUTH,"username":"$USER_NAME","password":"$PASS","bwtest":false}}
EOT

item() { # name uuid id
  cat <<EOT
{"name": "$1", "source_uuid": "$2", "visible": true, "locked": false, "id": $3, "pos": {"x": 0.0, "y": 0.0},
 "rot": 0.0, "scale": {"x": 1.0, "y": 1.0}, "align": 5, "bounds_type": 0, "bounds_align": 0, "bounds": {"x": 0.0, "y": 0.0},
 "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0}
EOT
}
COLOR=22222222-2222-4222-8222-222222222222
MEDIA_ID=33333333-3333-4333-8333-333333333333
cat >"$C/basic/scenes/sg.json" <<EOT
{"name": "sg", "current_scene": "Scene", "current_program_scene": "Scene", "scene_order": [{"name": "Scene"}],
 "groups": [], "quick_transitions": [], "transitions": [], "current_transition": "Fade", "transition_duration": 300,
 "preview_locked": false, "scaling_enabled": false,
 "sources": [
  {"id": "scene", "versioned_id": "scene", "name": "Scene", "uuid": "11111111-1111-4111-8111-111111111111",
   "enabled": true, "muted": false, "mixers": 0, "flags": 0, "volume": 1.0,
   "settings": {"custom_size": false, "id_counter": 2, "items": [$(item Color $COLOR 1), $(item Media $MEDIA_ID 2)]}},
  {"id": "color_source", "versioned_id": "color_source_v3", "name": "Color", "uuid": "$COLOR",
   "enabled": true, "muted": false, "mixers": 0, "flags": 0, "volume": 1.0,
   "settings": {"color": 4278255360, "width": 640, "height": 360}},
  {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "Media", "uuid": "$MEDIA_ID",
   "enabled": true, "muted": false, "mixers": 255, "flags": 0, "volume": 1.0, "monitoring_type": 0,
   "settings": {"local_file": "$MEDIA", "looping": true, "is_local_file": true, "restart_on_activate": true,
                "clear_on_media_end": false}}
 ]}
EOT
