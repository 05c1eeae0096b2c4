# The layers of docs/design.md §2, checked on the link graph at configure time: a component that
# links (directly or through others) a library it may not fails the configuration, naming both.
#
#   common, proto (hds_common, hds_cli, hds_config, ...)   nothing of ours
#   hds_monitoring                                          nothing of ours (prometheus-cpp only)
#   hds_scoring                                             nothing of ours; never LibTorch
#   hds_transport                                           proto
#   hds_data_client                                         transport, proto
#   data service (hds_data, hds_data_server, the binary)    transport, monitoring, proto; never LibTorch
#   hds_launch, hds-launch                                  proto, scoring; never LibTorch
#   the trainer                                             anything but the launcher and the
#                                                           data server (it is the server's client)
#
# tests/layers/ configures deliberately broken graphs against these rules and expects them refused.

set(HDS_LAYER_PROTO hds_common hds_config hds_control hds_cli hds_cli11)
# What each component may link of ours: HDS_LAYER_ALLOWED_<component>.
set(HDS_LAYER_COMPONENTS hds_common hds_config hds_control hds_cli hds_monitoring hds_scoring
    hds_transport hds_data_client hds_data hds_data_server hds-data-service hds_launch hds-launch)
set(HDS_LAYER_ALLOWED_hds_common "")
set(HDS_LAYER_ALLOWED_hds_config ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_control ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_cli ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_monitoring "")
set(HDS_LAYER_ALLOWED_hds_scoring "")
set(HDS_LAYER_ALLOWED_hds_transport ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_data_client hds_transport ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_data hds_transport hds_monitoring hds_opencv ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds_data_server hds_data ${HDS_LAYER_ALLOWED_hds_data})
set(HDS_LAYER_ALLOWED_hds-data-service hds_data_server ${HDS_LAYER_ALLOWED_hds_data_server})
set(HDS_LAYER_ALLOWED_hds_launch hds_scoring ${HDS_LAYER_PROTO})
set(HDS_LAYER_ALLOWED_hds-launch hds_launch ${HDS_LAYER_ALLOWED_hds_launch})
# Components that must run without LibTorch (the trainer's metrics too: it is tested without it).
set(HDS_LAYER_NO_TORCH hds_common hds_config hds_control hds_cli hds_monitoring hds_scoring
    hds_transport hds_data_client hds_data hds_data_server hds-data-service hds_launch hds-launch
    hds_trainer_reporting hds_trainer_watchdog)
set(HDS_LAYER_NO_LAUNCHER hds_trainer hds-trainer)
set(HDS_LAYER_NO_DATA_SERVER hds_trainer hds-trainer hds_world hds_trainer_reporting)

# Every library `target` links, transitively: target names (aliases resolved) and plain items.
function(hds_link_closure target out)
  set(seen "")
  set(pending ${target})
  while(pending)
    list(POP_FRONT pending current)
    if(current IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${current})
    if(NOT TARGET ${current})
      continue()
    endif()
    get_target_property(type ${current} TYPE)
    set(links "")
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(direct ${current} LINK_LIBRARIES)
      if(direct)
        list(APPEND links ${direct})
      endif()
    endif()
    get_target_property(interface ${current} INTERFACE_LINK_LIBRARIES)
    if(interface)
      list(APPEND links ${interface})
    endif()
    foreach(item IN LISTS links)
      # Static libraries pass their private dependencies on as $<LINK_ONLY:...>.
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
      if(item MATCHES "^\\$<")
        continue()
      endif()
      if(TARGET ${item})
        get_target_property(aliased ${item} ALIASED_TARGET)
        if(aliased)
          set(item ${aliased})
        endif()
      endif()
      list(APPEND pending ${item})
    endforeach()
  endwhile()
  list(REMOVE_ITEM seen ${target})
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# Adds to `problems` (in the caller) each link of a component of the list `components` whose
# name matches `pattern`.
macro(hds_forbid components pattern what)
  foreach(component IN LISTS ${components})
    if(TARGET ${component})
      hds_link_closure(${component} linked)
      foreach(item IN LISTS linked)
        if(item MATCHES "${pattern}")
          list(APPEND problems "${component} links ${item}: ${what}")
        endif()
      endforeach()
    endif()
  endforeach()
endmacro()

function(hds_check_layers)
  set(problems "")
  foreach(component IN LISTS HDS_LAYER_COMPONENTS)
    if(NOT TARGET ${component})
      continue()
    endif()
    set(allowed ${HDS_LAYER_ALLOWED_${component}})
    hds_link_closure(${component} linked)
    foreach(item IN LISTS linked)
      if(item MATCHES "^hds[_-]" AND NOT item IN_LIST allowed)
        list(APPEND problems "${component} links ${item}, which its layer may not use")
      endif()
    endforeach()
  endforeach()
  hds_forbid(HDS_LAYER_NO_TORCH "(^|/|lib)(torch|c10)([_.]|$)" "LibTorch, which it must run without")
  hds_forbid(HDS_LAYER_NO_LAUNCHER "^hds_launch$" "the launcher, which its layer may not use")
  hds_forbid(HDS_LAYER_NO_DATA_SERVER "^hds_data_server$"
             "the data server, whose client (hds_data_client) it uses instead")
  if(problems)
    list(JOIN problems "\n  " text)
    message(FATAL_ERROR "layer check (cmake/layers.cmake):\n  ${text}")
  endif()
endfunction()

hds_check_layers()
